"""Print the requirements of one optional extra of pyproject.toml, shell-quoted (used by the Makefile).

    python scripts/extra_requirements.py lrs-server
"""

import shlex
import sys
import tomllib
from pathlib import Path

extra = sys.argv[1]
deps = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"][extra]
print(" ".join(shlex.quote(d) for d in deps))
