"""Print the requirements of one optional extra of pyproject.toml, one per line (a pip requirements file).

    python scripts/extra_requirements.py lrs-server
"""

import sys
import tomllib
from pathlib import Path

extra = sys.argv[1]
deps = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"][extra]
print("\n".join(deps))
