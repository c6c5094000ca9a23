"""The review of the last complete month on a journey that never changes flags no change beyond what
the false discovery rate allows; its twin, whose one step drops sharply from the first day of that
month, is flagged at that step — in ``journey metrics review`` output.

The data end a few days into the month after the one reviewed, so that month's learners have been
followed for only part of the horizon: the test is about time honesty, not only multiplicity.
"""

from __future__ import annotations

import math
import subprocess
import warnings

import polars as pl
import pytest

from journeylib import metrics as jm

from ._steady import LAST_MONTH, MAP, flagged, generate, write_workspace

REPLICATES = 100
FDR = 0.05
CHANGE_TABLES = {"hotspots", "scorecard", "changes", "interventions"}


def _review(seed: int, **kw):
    ev, ln = generate(seed, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jm.review(ev, ln, MAP, period=LAST_MONTH)


@pytest.mark.slow
def test_steady_journey_false_discovery_proportion():
    changes, anything = [], []
    for seed in range(1000, 1000 + REPLICATES):
        r = _review(seed)
        assert not r.followed  # the month reviewed has not had its whole horizon yet
        f = flagged(r)
        # nothing changes, so every flagged comparison is false: the proportion is 1 if any, else 0
        changes.append(1.0 if any(t in CHANGE_TABLES for t, _ in f) else 0.0)
        anything.append(1.0 if f else 0.0)
    mean_changes = sum(changes) / REPLICATES
    mean_all = sum(anything) / REPLICATES
    print(f"mean false discovery proportion: changes {mean_changes:.3f}, every flag {mean_all:.3f} "
          f"({REPLICATES} replicates, nominal {FDR})")
    assert mean_changes <= FDR
    # every flag, segment alerts included: under a global null Benjamini–Hochberg's FDR is exactly the
    # chance of any rejection, about FDR itself; the mean over the replicates must agree with it
    # within two binomial standard errors
    assert mean_all <= FDR + 2 * math.sqrt(FDR * (1 - FDR) / REPLICATES)


@pytest.mark.slow
def test_sharp_drop_flagged_in_journey_metrics_review(tmp_path, journey_cmd):
    ev, ln = generate(7, drop_step="lesson")
    ws = tmp_path / "twin"
    write_workspace(ws, ev, ln)
    out = tmp_path / "review"
    res = subprocess.run([*journey_cmd, "metrics", "review", str(ws), "--period", LAST_MONTH, "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    hot = pl.read_csv(out / "hotspots.csv")
    row = hot.filter(pl.col("touchpoint_id") == "lesson").row(0, named=True)
    assert row["significant"] and row["finding"]
    assert row["stop_rate"] - row["previous_stop_rate"] > 0.25
    assert hot.filter(pl.col("significant"))["touchpoint_id"].to_list() == ["lesson"]
    text = (out / "findings.txt").read_text(encoding="utf-8")
    assert "Follow-up is not complete" in text.splitlines()[2]
    assert "Fewer learners carried on from Lesson in September 2025" in text
    # the same journey without the drop flags nothing there
    steady = _review(7)
    assert not steady.hotspots.filter(pl.col("touchpoint_id") == "lesson")["significant"].item()
