"""The Open University Learning Analytics Dataset (OULAD) as a journey workspace.

:func:`build_oulad_workspace` reads the published OULAD CSV files and writes a
ready workspace folder (``journey.yml``, ``learners.parquet``,
``events.parquet``) that every ``journey`` command can open.

Design choices (also in ``docs/sources.md``):

* **Learner** = one registration: ``"{code_module}-{code_presentation}-{id_student}"``
  (the same student on two presentations is two learners). Attributes: the
  module and presentation, ``id_student`` and the demographics of
  ``studentInfo.csv`` (gender, region, highest_education, imd_band, age_band,
  disability, num_of_prev_attempts, studied_credits) plus ``final_result``.
* **Dates**: OULAD dates are days relative to the presentation start. A start
  date is declared per presentation letter: ``B`` → 1 February, ``J`` → 1
  October of the presentation year (:data:`START_MONTH`); events get
  timestamps ``start + day`` at a fixed hour per kind so that same-day events
  keep the journey order (registration 08:00, VLE study 12:00, assessment
  18:00, result 23:00).
* **Touchpoints** (generic, so that every presentation fits one map):
  ``registered`` → ``course_start`` (day 0, for learners still registered
  then; a late registration starts one minute after registering) →
  ``vle_study`` (one ``viewed`` event per learner and day with clicks,
  ``value`` = clicks; only when *every* selected presentation has VLE data,
  i.e. a selection of AAA-2013J, AAA-2014J, BBB-2013B) → ``assessment_1`` …
  ``assessment_K`` → ``exam`` (only when every selected presentation has
  recorded exam submissions) → ``result``.
* **Assessment blocks**: presentations have 5 to 13 non-exam assessments. With
  K = the smallest count among the selected presentations, a presentation's
  i-th assessment of n (by scheduled date, then id) belongs to block
  ``ceil(i * K / n)``; for one presentation (or equal counts) block i is simply
  assessment i. A submission is ``passed`` when score ≥ 40 (the OU pass
  mark), else ``failed`` (no score: ``completed``); ``value`` = score. A
  *banked* result (carried over from an earlier presentation, dated before
  the start) is placed at the start of the presentation.
* **Result**: Pass and Distinction learners get ``passed`` at ``result`` on
  the presentation's last day, Fail learners ``failed``; Withdrawn learners
  have no result event, so their journey stops at their last touchpoint
  (unregistration = stopped).
* **Personas** by ``highest_education``: no formal or lower than A level,
  A level or equivalent, higher education or postgraduate.

>>> from journeylib.sources.oulad import presentation_start
>>> presentation_start("2013J")
datetime.datetime(2013, 10, 1, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from ..errors import DataError
from ..load import TS
from ..model import JourneyMap, map_from_dict

#: Declared presentation start month per presentation letter (B = February, J = October).
START_MONTH = {"B": 2, "J": 10}
PASS_MARK = 40.0
ATTRIBUTION = (
    'Data: Kuzilek J., Hlosta M., Zdrahal Z. "Open University Learning Analytics dataset", '
    "Scientific Data 4, 170171 (2017), doi:10.1038/sdata.2017.171. Licence: CC BY 4.0."
)
ATTRIBUTES = [
    "code_module", "code_presentation", "id_student", "gender", "region", "highest_education",
    "imd_band", "age_band", "disability", "num_of_prev_attempts", "studied_credits", "final_result",
]
_FILES = ["courses.csv", "assessments.csv", "studentInfo.csv", "studentRegistration.csv", "studentAssessment.csv"]


@dataclass
class OuladBuild:
    """What :func:`build_oulad_workspace` wrote.

    >>> OuladBuild(Path("w"), None, 1, 2, ["AAA-2013J"], 5, True, False).vle
    True
"""

    directory: Path
    map: JourneyMap
    learners: int
    events: int
    presentations: list[str]
    assessment_blocks: int
    vle: bool
    exam: bool


def presentation_start(code_presentation: str) -> dt.datetime:
    """The declared start (UTC midnight) of a presentation such as ``"2014B"``.

    ``B`` presentations start on 1 February, ``J`` presentations on 1 October.

    >>> presentation_start("2014B").date().isoformat()
    '2014-02-01'
    """
    year, letter = int(code_presentation[:4]), code_presentation[4:].upper()
    if letter not in START_MONTH:
        raise DataError(f"unknown presentation '{code_presentation}' (expected a year and B or J)")
    return dt.datetime(year, START_MONTH[letter], 1, tzinfo=dt.timezone.utc)


def _read(directory: Path, name: str) -> pl.DataFrame:
    path = directory / name
    if not path.exists():
        raise DataError("OULAD file not found", file=path)
    try:
        return pl.read_csv(path, null_values=["", "?"], infer_schema_length=None)
    except Exception as exc:  # polars raises several parse error types
        raise DataError(f"cannot read OULAD CSV: {str(exc).splitlines()[0]}", file=path) from None


def _key(df: pl.DataFrame) -> pl.Expr:
    return pl.concat_str([pl.col("code_module"), pl.col("code_presentation"), pl.col("id_student").cast(pl.Utf8)], separator="-")


def _at(day: pl.Expr, hour: int, minute: int = 0) -> pl.Expr:
    """Start of the presentation + ``day`` days + a fixed time of day."""
    return pl.col("__start") + pl.duration(days=day, hours=hour, minutes=minute)


def _starts(pres: pl.DataFrame) -> pl.DataFrame:
    return pres.with_columns(
        pl.col("code_presentation").map_elements(presentation_start, return_dtype=pl.Datetime("us", "UTC")).alias("__start")
    )


def build_map(blocks: int, *, vle: bool, exam: bool, presentations: list[str]) -> JourneyMap:
    """The OULAD journey map for ``blocks`` assessment blocks (see module docs).

    >>> m = build_map(3, vle=False, exam=False, presentations=["AAA-2013J"])
    >>> m.touchpoint_ids
    ['registered', 'course_start', 'assessment_1', 'assessment_2', 'assessment_3', 'result']
    """
    tps: list[dict] = [
        {"id": "registered", "name": "Registration", "stage": "enrol", "channel": "student services",
         "purpose": "The learner registers on the module presentation.",
         "target_emotion": {"label": "motivated"}, "kpis": [{"metric": "conversion", "target": 0.85}]},
        {"id": "course_start", "name": "Module start", "stage": "start", "channel": "VLE",
         "purpose": "The presentation starts with the learner still registered.",
         "target_emotion": {"label": "curious"}, "kpis": [{"metric": "conversion", "target": 0.85}]},
    ]
    if vle:
        tps.append({"id": "vle_study", "name": "Online study (VLE)", "stage": "study", "channel": "VLE",
                    "purpose": "Study days in the virtual learning environment (value = clicks that day).",
                    "target_emotion": {"label": "confident"},
                    "kpis": [{"metric": "events_per_learner", "target": 30}]})
    for b in range(1, blocks + 1):
        tps.append({
            "id": f"assessment_{b}", "name": f"Assessment {b}" if blocks > 1 else "Assessments",
            "stage": "assess", "channel": "TMA/CMA",
            "purpose": f"Submit the assessments of block {b} of {blocks} (tutor- or computer-marked, by date order).",
            "target_emotion": {"label": "confident"},
            "kpis": [{"metric": "pass_rate", "target": 0.9}, {"metric": "stopped", "target": 0.1}],
        })
    if exam:
        tps.append({"id": "exam", "name": "Final exam", "stage": "assess", "channel": "exam centre",
                    "purpose": "Sit the final exam.", "target_emotion": {"label": "anxious"},
                    "kpis": [{"metric": "pass_rate", "target": 0.8}]})
    tps.append({"id": "result", "name": "Final result", "stage": "result", "channel": "student services",
                "purpose": "The module result is published: passed (Pass or Distinction) or failed.",
                "target_emotion": {"label": "proud"}, "kpis": [{"metric": "pass_rate", "target": 0.75}]})
    data = {
        "name": "OULAD module presentations" if len(presentations) != 1 else f"OULAD {presentations[0]}",
        "description": (
            "Open University module presentations " + ", ".join(presentations)
            + ": registration, module start, "
            + ("online study, " if vle else "")
            + f"{blocks} assessment block{'s' if blocks > 1 else ''}, "
            + ("exam, " if exam else "")
            + "final result. Withdrawn learners stop at their last touchpoint."
        ),
        "attribution": ATTRIBUTION,
        "dormancy_days": 60,
        "outcomes": ["final_result"],
        "stages": [
            {"id": "enrol", "name": "Enrol", "learner_goal": "Get a place on the module."},
            {"id": "start", "name": "Start", "learner_goal": "Begin studying with the cohort."},
            *([{"id": "study", "name": "Study", "learner_goal": "Work through the study materials."}] if vle else []),
            {"id": "assess", "name": "Assess", "learner_goal": "Submit and pass the assessments."},
            {"id": "result", "name": "Result", "learner_goal": "Pass the module."},
        ],
        "touchpoints": tps,
        "personas": [
            {"id": "no_a_level", "name": "Without A levels",
             "description": "Highest education lower than A level or no formal qualifications.",
             "where": "highest_education IN ('Lower Than A Level', 'No Formal quals')"},
            {"id": "a_level", "name": "A level or equivalent",
             "description": "A levels or an equivalent qualification.",
             "where": "highest_education = 'A Level or Equivalent'"},
            {"id": "graduate", "name": "Higher education",
             "description": "A higher-education or postgraduate qualification.",
             "where": "highest_education IN ('HE Qualification', 'Post Graduate Qualification')"},
        ],
        "funnels": {
            "journey": [t["id"] for t in tps],
            "assessments": [t["id"] for t in tps if t["id"].startswith("assessment_")] + ["result"],
        },
    }
    return map_from_dict(data, file="journey.yml (OULAD)")


def _parse_presentations(selected: list[str] | None, courses: pl.DataFrame) -> pl.DataFrame:
    courses = courses.with_columns(pl.concat_str(["code_module", "code_presentation"], separator="-").alias("__pres"))
    if not selected:
        return courses.sort("code_module", "code_presentation")
    wanted = [s.strip().upper() for s in selected if s.strip()]
    have = set(courses["__pres"].to_list())
    unknown = [w for w in wanted if w not in have]
    if unknown:
        raise DataError(f"unknown presentation(s) {', '.join(unknown)}; known: {', '.join(sorted(have))}")
    return courses.filter(pl.col("__pres").is_in(wanted)).sort("code_module", "code_presentation")


def build_oulad_workspace(oulad_dir: str | Path, into: str | Path, presentations: list[str] | None = None) -> OuladBuild:
    """Write a journey workspace for OULAD presentations into ``into``.

    ``presentations`` are ids like ``"AAA-2013J"``; ``None`` means all 22.
    Returns an :class:`OuladBuild` with the counts written.

    The data set is not part of the repository (it sits beside it, in
    ``../shared/data/oulad``), so this example is not run:

    >>> b = build_oulad_workspace("../shared/data/oulad", "build/oulad", ["AAA-2013J"])  # doctest: +SKIP
    >>> b.learners, b.events, b.vle                                                     # doctest: +SKIP
    (383, 36787, True)

    A folder that is not there is refused before anything is written:

    >>> build_oulad_workspace("no/such/oulad", "build/oulad")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: no/such/oulad: OULAD folder not found
    """
    src, out = Path(oulad_dir), Path(into)
    if not src.is_dir():
        raise DataError("OULAD folder not found", file=src)
    t = {name: _read(src, name) for name in _FILES}
    pres = _starts(_parse_presentations(presentations, t["courses.csv"]))
    keys = ["code_module", "code_presentation"]
    pres_keys = pres.select(*keys, "__start", "module_presentation_length")

    info = t["studentInfo.csv"].join(pres_keys, on=keys, how="inner")
    reg = t["studentRegistration.csv"].join(pres_keys.select(keys), on=keys, how="inner")
    info = info.join(reg.select(*keys, "id_student", "date_registration", "date_unregistration"),
                     on=[*keys, "id_student"], how="left")
    info = info.with_columns(_key(info).alias("learner_id"))

    # --- assessments: date order within a presentation → blocks ------------------
    asm = t["assessments.csv"].join(pres_keys, on=keys, how="inner").with_columns(
        pl.coalesce([pl.col("date"), pl.col("module_presentation_length")]).alias("__due")
    )
    non_exam = asm.filter(pl.col("assessment_type") != "Exam").sort([*keys, "__due", "id_assessment"])
    counts = non_exam.group_by(keys).agg(pl.len().alias("__n"))
    blocks = int(counts["__n"].min()) if counts.height else 0
    non_exam = non_exam.join(counts, on=keys).with_columns(
        (pl.int_range(pl.len()).over(keys) + 1).alias("__i")
    ).with_columns(
        ((pl.col("__i") * blocks + pl.col("__n") - 1) // pl.col("__n")).cast(pl.Int64).alias("__block")  # ceil(i*K/n)
    )
    tp_of_asm = pl.concat([
        non_exam.select("id_assessment", pl.format("assessment_{}", pl.col("__block")).alias("touchpoint_id")),
        asm.filter(pl.col("assessment_type") == "Exam").select("id_assessment", pl.lit("exam").alias("touchpoint_id")),
    ])
    sa = t["studentAssessment.csv"].join(tp_of_asm, on="id_assessment", how="inner").join(
        asm.select("id_assessment", *keys), on="id_assessment", how="inner"
    )
    exam_pres = sa.filter(pl.col("touchpoint_id") == "exam").select(keys).unique()
    exam = pres.height > 0 and exam_pres.height == pres.height
    if not exam:
        sa = sa.filter(pl.col("touchpoint_id") != "exam")

    # --- VLE: daily clicks, only when every selected presentation has them ----------
    vle_path = src / "studentVle.csv.gz"
    vle_days = None
    if vle_path.exists():
        sel = pres.select(keys)
        vle_days = (
            pl.scan_csv(vle_path, null_values=["", "?"], schema_overrides={"code_module": pl.Utf8, "code_presentation": pl.Utf8})
            .join(sel.lazy(), on=keys, how="inner")
            .group_by([*keys, "id_student", "date"]).agg(pl.col("sum_click").sum().alias("clicks"))
            .collect()
        )
        vle_pres = vle_days.select(keys).unique().height
        if vle_pres != pres.height:
            vle_days = None
    vle = vle_days is not None

    jmap = build_map(max(blocks, 1), vle=vle, exam=exam, presentations=pres["__pres"].to_list())

    # --- events ------------------------------------------------------------------
    base = info.select("learner_id", *keys, "id_student", "__start", "module_presentation_length",
                       "date_registration", "date_unregistration", "final_result")
    frames: list[pl.DataFrame] = []
    registered = base.filter(pl.col("date_registration").is_not_null())
    frames.append(registered.select(
        "learner_id", pl.lit("registered").alias("touchpoint_id"), _at(pl.col("date_registration"), 8).alias("timestamp"),
        pl.lit("reached").alias("event"), pl.lit(None, dtype=pl.Float64).alias("value"),
    ))
    started = base.filter(pl.col("date_unregistration").is_null() | (pl.col("date_unregistration") > 0))
    reg_at = _at(pl.col("date_registration").fill_null(0), 8)
    frames.append(started.select(
        "learner_id", pl.lit("course_start").alias("touchpoint_id"),
        pl.when(pl.col("date_registration").fill_null(0) >= 0).then(reg_at + pl.duration(minutes=1))
        .otherwise(pl.col("__start")).alias("timestamp"),
        pl.lit("started").alias("event"), pl.lit(None, dtype=pl.Float64).alias("value"),
    ))
    if vle:
        v = vle_days.join(base.select(*keys, "id_student", "learner_id", "__start"), on=[*keys, "id_student"], how="inner")
        frames.append(v.select(
            "learner_id", pl.lit("vle_study").alias("touchpoint_id"), _at(pl.col("date"), 12).alias("timestamp"),
            pl.lit("viewed").alias("event"), pl.col("clicks").cast(pl.Float64).alias("value"),
        ))
    s = sa.join(base.select(*keys, "id_student", "learner_id", "__start"), on=[*keys, "id_student"], how="inner")
    score = pl.col("score").cast(pl.Float64)
    frames.append(s.select(
        "learner_id", "touchpoint_id",
        # a banked result (carried over from an earlier presentation, dated before it) counts at the start
        _at(pl.when(pl.col("is_banked") == 1).then(pl.max_horizontal(pl.col("date_submitted"), pl.lit(0)))
            .otherwise(pl.col("date_submitted")), 18, 0).alias("timestamp"),
        pl.when(score.is_null()).then(pl.lit("completed")).when(score >= PASS_MARK).then(pl.lit("passed"))
        .otherwise(pl.lit("failed")).alias("event"),
        score.alias("value"),
        pl.col("id_assessment").cast(pl.Utf8).alias("__aid"),
    ))
    finished = base.filter(pl.col("final_result") != "Withdrawn")
    frames.append(finished.select(
        "learner_id", pl.lit("result").alias("touchpoint_id"), _at(pl.col("module_presentation_length"), 23).alias("timestamp"),
        pl.when(pl.col("final_result").is_in(["Pass", "Distinction"])).then(pl.lit("passed")).otherwise(pl.lit("failed")).alias("event"),
        pl.when(pl.col("final_result") == "Distinction").then(1.0).when(pl.col("final_result") == "Pass").then(0.5)
        .otherwise(0.0).alias("value"),
    ))
    events = pl.concat([f.with_columns(pl.col("__aid") if "__aid" in f.columns else pl.lit("", dtype=pl.Utf8).alias("__aid"))
                        for f in frames], how="vertical_relaxed")
    events = events.with_columns(
        pl.col("timestamp").cast(TS),
        pl.lit(None, dtype=pl.Float64).alias("emotion"),
        pl.concat_str([pl.col("learner_id"), pl.col("touchpoint_id"), pl.col("__aid"),
                       pl.col("timestamp").dt.strftime("%Y%m%d%H%M")], separator=":").alias("event_id"),
    ).select("learner_id", "touchpoint_id", "timestamp", "event", "value", "emotion", "event_id")
    # a learner can submit one assessment twice on a day only in banked cases: keep one
    events = events.unique("event_id", keep="first", maintain_order=True).sort(["learner_id", "timestamp"])

    learners = info.select(
        "learner_id",
        pl.lit(None, dtype=pl.Utf8).alias("persona"),
        pl.when(pl.col("date_registration").is_not_null()).then(_at(pl.col("date_registration"), 8)).cast(TS).alias("enrolled_at"),
        *[pl.col(c).cast(pl.Utf8) for c in ATTRIBUTES],
    ).sort("learner_id")

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("store.duckdb", "events.csv", "events.jsonl", "learners.csv"):
        if (out / stale).exists():
            (out / stale).unlink()
    (out / "journey.yml").write_text(
        "# OULAD journey map, written by `journey oulad`; see docs/sources.md for the design.\n"
        + yaml.safe_dump(jmap.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    learners.write_parquet(out / "learners.parquet")
    events.write_parquet(out / "events.parquet")
    return OuladBuild(out, jmap, learners.height, events.height, pres["__pres"].to_list(), blocks, vle, exam)
