"""Journey metrics, written once for polars, DuckDB and Spark.

Import as ``from journeylib import metrics as jm``. Every function takes
``(events, learners, jmap, ...)`` where ``events``/``learners`` may be polars
DataFrames/LazyFrames, DuckDB relations or Spark DataFrames, and returns a
small polars DataFrame (or a dataclass of them). ``data_end`` defaults to the
latest event; ``by`` is ``None``, a learner column or a list of them. Rates
carry Wilson 95 % intervals in ``<name>_low``/``<name>_high``. Exact
definitions: ``docs/metrics.md``.

>>> from journeylib import metrics as jm
>>> from journeylib.workspace import load_workspace
>>> ws = load_workspace("data/sample")
>>> f = jm.funnel(ws.events, ws.learners, ws.map, "course", by="persona")
>>> f.filter(touchpoint_id="certificate").select("persona", "learners").rows()   # the last step
[('career_changer', 90), ('employer_sponsored', 45), ('new_graduate', 28), ('unassigned', 66),
 ('working_professional', 206)]
"""

from .coverage import Coverage, coverage
from .dropoff import dropoff, stop_transitions
from .emotion import emotion, emotion_vs_stopping
from .funnel import funnel
from .journeys import MODES, STATES, journeys, resolve_steps
from .kpis import kpis, measure
from .periods import period_bounds, previous_period
from .review import Review, intervention_effects, review
from .segments import segment_gaps
from .transitions import conformance, paths, transitions
from .outcomes import OUTCOMES, outcomes
from .periods import default_period, period_label
from .survival import Survival, stop_times, survival
from .stats import bh_fdr, cohens_h, mean_ci, median_ci, newcombe_diff, two_by_two, wilson

__all__ = [
    "Coverage", "coverage", "MODES", "STATES", "journeys", "resolve_steps", "funnel", "dropoff", "stop_transitions",
    "kpis", "measure", "emotion", "emotion_vs_stopping", "segment_gaps",
    "transitions", "paths", "conformance", "period_bounds", "previous_period", "review", "Review", "intervention_effects",
    "OUTCOMES", "outcomes", "survival", "stop_times", "Survival", "default_period", "period_label",
    "wilson", "newcombe_diff", "two_by_two", "bh_fdr", "cohens_h", "mean_ci", "median_ci",
]
