"""``journey init``: draft ``journey.yml`` and ``sources.yml`` from what learners actually did.

The raw exports are read with the built-in presets (:mod:`journeylib.sources`),
so the learners are the real ones (the preset's identity rules) and staff or
system actors are left out. From every learner's records the draft finds:

* the **course** (the one with most learners unless ``course`` is given; the
  others are named in the summary and set aside by ``course:`` in
  ``sources.yml``);
* **candidate touchpoints** — enrolment, the course home, each course section
  (Open edX chapters, with every subsection, problem and video found in them),
  each Moodle activity, each xAPI module or activity, course completion,
  certificates and badges — named from display names where the data has them;
* their **order**: a touchpoint goes before another when more of the learners
  who reached both reached it first (a majority vote over pairs; ties by the
  median first-reach time), within the **stage** its kind belongs to (before
  the course, onboarding, engagement, completion, after);
* placeholder purposes, target emotions and KPIs, each marked ``to review``,
  a ``course`` funnel over the course's path, and mapping rules with full ids.

Nothing is written over an existing map unless ``force``.

>>> d = draft(["tests/fixtures/sources/xapi_course.jsonl"], source_type="xapi")
>>> [t.name for t in d.touchpoints][:3]
['Enrolment', 'Module 1: Orientation', 'Module 2: Mapping journeys']
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import DataError
from .sources.presets import STAGE_OF_KIND, course_matches, humanise, looks_generated

#: Stages of a drafted map, in order, with a placeholder learner goal.
STAGES = {
    "before": ("Before the course", "Find the course and decide to join (to review)"),
    "onboarding": ("Onboarding", "Get started and feel able to succeed (to review)"),
    "engagement": ("Engagement", "Work through the course sections (to review)"),
    "completion": ("Completion", "Finish, pass and get recognised (to review)"),
    "after": ("After the course", "Use and share what was learned (to review)"),
}
_EMOTION = {"before": "curious", "onboarding": "excited", "engagement": "confident", "completion": "proud", "after": "satisfied"}
#: Kinds left out of the map, each with the reason written into a ``skip`` rule.
SKIPPED_KINDS = {
    "unenrolment": "unenrolment (a journey ends at the learner's last touchpoint; to review)",
    "grade_update": "grade recalculation (a value, not a learner step; to review)",
    "site": "site-level activity outside the course (to review)",
}
SOURCE_SECTION = {"edx": "edx", "moodle": "moodle", "moodle-report": "moodle_report", "xapi": "xapi"}
_MODULE_NAME = {"mod_quiz": "Quiz", "mod_assign": "Assignment", "mod_page": "Page", "mod_forum": "Forum",
                "mod_feedback": "Feedback", "mod_resource": "File", "mod_url": "Link", "mod_book": "Book",
                "mod_lesson": "Lesson", "mod_scorm": "SCORM package", "mod_h5pactivity": "H5P", "mod_choice": "Choice"}


@dataclass
class Candidate:
    """A possible touchpoint: its key, kind, name, stage and the rules that map records to it."""

    key: str
    kind: str
    name: str
    stage: str
    rules: list[dict] = field(default_factory=list)
    first: dict = field(default_factory=dict)  # learner -> first reach (epoch seconds)
    records: int = 0
    events: Counter = field(default_factory=Counter)  # event kinds seen (passed, completed, viewed, …)
    valued: int = 0  # records with a value (a score)

    @property
    def learners(self) -> int:
        return len(self.first)


@dataclass
class Draft:
    """What ``journey init`` found: the touchpoints in order, the course, the rules and the summary counts."""

    source_type: str
    course: str | None
    courses: Counter
    touchpoints: list[Candidate]
    learners: int
    read: int
    rejected: Counter
    unplaced: Counter
    left_out: list[Candidate]
    staff: list[str]
    skip_kinds: list[str]
    files: list[str]
    timezone: str = "UTC"
    dormancy_days: int = 30

    def summary(self) -> list[str]:
        """Plain-text lines for the command line."""
        lines = [f"Read {self.read} records from {len(self.files)} file(s) ({self.source_type}): "
                 f"{self.learners} learners in course {self.course or '(none named)'}"]
        if len(self.courses) > 1:
            others = ", ".join(f"{c} ({n} learners)" for c, n in self.courses.most_common() if c != self.course)
            lines.append(f"Other courses in the data (set aside by course: in sources.yml): {others}")
        by_stage: dict[str, list[Candidate]] = defaultdict(list)
        for t in self.touchpoints:
            by_stage[t.stage].append(t)
        for stage, tps in by_stage.items():
            lines.append(f"  {STAGES[stage][0]}: " + "; ".join(f"{t.name} ({t.learners})" for t in tps))
        if self.rejected:
            lines.append("Not learners' records (reasoned rejects): "
                         + "; ".join(f"{why} ({n})" for why, n in self.rejected.most_common(6)))
        if self.staff:
            lines.append(f"Staff users found (listed under staff_users): {', '.join(self.staff)}")
        if self.unplaced or self.left_out:
            items = [f"{k} ({n})" for k, n in self.unplaced.most_common(8)]
            items += [f"{c.name} ({c.learners} learners)" for c in self.left_out[:5]]
            lines.append("Could not place (left without a rule): " + "; ".join(items))
        return lines


# --------------------------------------------------------------------------
# reading records through the presets
# --------------------------------------------------------------------------

def _records(paths: list[Path], source_type: str, staff: list[str]) -> Iterable[dict]:
    from .sources import edx, moodle, xapi
    from .sources.rules import SourceRules

    rules = SourceRules(staff_users=staff)
    for p in paths:
        if source_type == "edx":
            yield from edx.iter_records(p, rules=rules)
        elif source_type == "moodle":
            yield from moodle.iter_logstore(p, rules=rules)
        elif source_type == "moodle-report":
            yield from moodle.iter_report(p, rules=rules)
        elif source_type == "xapi":
            yield from xapi.iter_records(p, rules)
        else:
            raise DataError(f"journey init drafts from Open edX, Moodle and xAPI exports, not {source_type!r} files", file=p)


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        t = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def _staff_users(records: list[dict], source_type: str) -> list[str]:
    """Users seen acting as staff: course-team events (Open edX) or teaching-level events (Moodle)."""
    out = set()
    for r in records:
        if source_type == "edx" and str(r.get("__error", "")).startswith("course team action"):
            raw = json.loads(r["__raw"]) if r.get("__raw") else {}
            uid = (raw.get("context") or {}).get("user_id")
            if uid not in (None, ""):
                out.add(str(uid))
        if source_type == "moodle" and str(r.get("__error", "")).startswith("staff action"):
            raw = json.loads(r["__raw"]) if r.get("__raw") else {}
            if raw.get("userid"):
                out.add(str(raw["userid"]))
    return sorted(out, key=lambda x: (len(x), x))


# --------------------------------------------------------------------------
# per-source candidates
# --------------------------------------------------------------------------

def _edx_structure(records: list[dict]) -> tuple[dict, dict, dict]:
    """subsection → section, block → section (the learner's current section), names of subsections/blocks."""
    sub_section: dict[str, Counter] = defaultdict(Counter)
    block_section: dict[str, Counter] = defaultdict(Counter)
    names: dict[str, str] = {}
    current: dict[str, str] = {}
    for r in sorted((r for r in records if r.get("learner_id") and not r.get("__error")),
                    key=lambda r: (r["learner_id"], r.get("timestamp") or "")):
        sec, sub, blk = r.get("section"), r.get("subsection"), r.get("block")
        extra = json.loads(r["__names"]) if r.get("__names") else {}
        if sub and extra.get("subsection_name"):
            names[sub] = extra["subsection_name"]
        if blk and extra.get("block_name"):
            names[blk] = extra["block_name"]
        if sec:
            current[r["learner_id"]] = sec
            if sub:
                sub_section[sub][sec] += 1
        elif blk and r["learner_id"] in current:
            block_section[blk][current[r["learner_id"]]] += 1
    return ({k: c.most_common(1)[0][0] for k, c in sub_section.items()},
            {k: c.most_common(1)[0][0] for k, c in block_section.items()}, names)


def _edx_key(r: dict, subs: dict, blocks: dict) -> tuple[str | None, str]:
    kind = r.get("kind") or "other"
    if kind in SKIPPED_KINDS:
        return None, kind
    if kind in ("enrolment", "about", "course", "course_grade", "completion", "certificate", "badge", "certificate_shared"):
        return kind, kind
    section = r.get("section") or subs.get(r.get("subsection") or "") or blocks.get(r.get("block") or "")
    if section:
        return section, "section"
    return None, kind


def _edx_candidates(records: list[dict]) -> tuple[dict[str, Candidate], Counter]:
    subs, blocks, names = _edx_structure(records)
    cands: dict[str, Candidate] = {}
    unplaced: Counter = Counter()
    for r in records:
        key, kind = _edx_key(r, subs, blocks)
        if key is None:
            unplaced[kind] += 1
            continue
        c = cands.get(key)
        if c is None:
            c = cands[key] = Candidate(key, kind, _kind_name(kind), STAGE_OF_KIND.get(kind, "engagement"))
        _reach(c, r)
    sections = [c for c in cands.values() if c.kind == "section"]
    for c in sections:
        my_subs = sorted(s for s, sec in subs.items() if sec == c.key)
        my_blocks = sorted(b for b, sec in blocks.items() if sec == c.key)
        slug = c.key.rsplit("block@", 1)[-1]
        first_sub = next((names[s] for s in my_subs if s in names), None)
        c.name = humanise(slug) if not looks_generated(slug) else (first_sub or f"Section {slug[:8]}")
        c.rules = [{"section": c.key}]
        if my_subs:
            c.rules.append({"subsection": {"one_of": my_subs}})
        if my_blocks:
            c.rules.append({"block": {"one_of": my_blocks}})
    for c in cands.values():
        if c.kind != "section":
            c.rules = [{"kind": c.kind}]
    return cands, unplaced


def _moodle_candidates(records: list[dict]) -> tuple[dict[str, Candidate], Counter]:
    cands: dict[str, Candidate] = {}
    unplaced: Counter = Counter()
    for r in records:
        kind = r.get("kind") or "other"
        if kind in SKIPPED_KINDS:
            unplaced[kind] += 1
            continue
        if (r.get("contextlevel") or "") == "70" and r.get("contextinstanceid"):
            key = f"cm{r['contextinstanceid']}"
            if key not in cands:
                label = _MODULE_NAME.get(r.get("component") or "", humanise((r.get("component") or "activity").replace("mod_", "")))
                cands[key] = Candidate(key, kind, f"{label} {r['contextinstanceid']}", "engagement",
                                       rules=[{"contextlevel": 70, "contextinstanceid": int(r["contextinstanceid"])}])
            if cands[key].kind in ("content", "other") and kind not in ("content", "other"):
                cands[key].kind = kind
        elif kind in STAGE_OF_KIND and kind != "grade":
            key = kind
            cands.setdefault(key, Candidate(key, kind, _kind_name(kind), STAGE_OF_KIND[kind], rules=[{"kind": kind}]))
        else:
            unplaced[kind] += 1
            continue
        _reach(cands[key], r)
    return cands, unplaced


def _report_candidates(records: list[dict]) -> tuple[dict[str, Candidate], Counter]:
    cands: dict[str, Candidate] = {}
    unplaced: Counter = Counter()
    for r in records:
        kind, ctx = r.get("kind") or "other", r.get("event_context") or ""
        if kind in ("enrolment", "course", "completion", "certificate", "badge", "about"):
            key, name, rule = kind, _kind_name(kind), {"kind": kind}
        elif ":" in ctx and not ctx.startswith("Course:"):
            key, name, rule = ctx, ctx.split(":", 1)[1].strip() or ctx, {"event_context": ctx}
        else:
            unplaced[kind] += 1
            continue
        cands.setdefault(key, Candidate(key, kind, name, STAGE_OF_KIND.get(kind, "engagement"), rules=[rule]))
        _reach(cands[key], r)
    return cands, unplaced


def _xapi_candidates(records: list[dict]) -> tuple[dict[str, Candidate], Counter]:
    cands: dict[str, Candidate] = {}
    unplaced: Counter = Counter()
    for r in records:
        kind = r.get("kind") or "other"
        names = json.loads(r["__names"]) if r.get("__names") else {}
        if kind in SKIPPED_KINDS:
            unplaced[kind] += 1
            continue
        if kind in ("enrolment", "completion", "course_grade", "certificate", "badge", "about", "course"):
            key, name, rule = kind, _kind_name(kind), {"kind": kind}
        elif kind in ("unenrolment", "navigation"):
            unplaced[kind] += 1
            continue
        elif r.get("section"):
            key = r["section"]
            name = names.get("section") if r["section"] != r.get("object") else names.get("object")
            name = name or humanise(key.rstrip("/").rsplit("/", 1)[-1].rsplit("@", 1)[-1])
            rule = {"section": key}
        else:
            unplaced[kind] += 1
            continue
        cands.setdefault(key, Candidate(key, kind if kind != "content" else "section", name, STAGE_OF_KIND.get(kind, "engagement"),
                                        rules=[rule]))
        _reach(cands[key], r)
    return cands, unplaced


def _kind_name(kind: str) -> str:
    return {"enrolment": "Enrolment", "about": "Course page", "course": "Course home", "course_grade": "Passed the course",
            "completion": "Course completed", "certificate": "Certificate", "badge": "Badge",
            "certificate_shared": "Certificate shared"}.get(kind, humanise(kind))


def _reach(c: Candidate, r: dict) -> None:
    t = _epoch(r.get("timestamp"))
    c.records += 1
    c.events[r.get("event") or "reached"] += 1
    c.valued += r.get("value") is not None
    if t is not None:
        prev = c.first.get(r["learner_id"])
        if prev is None or t < prev:
            c.first[r["learner_id"]] = t


# --------------------------------------------------------------------------
# order
# --------------------------------------------------------------------------

def typical_order(cands: list[Candidate]) -> list[Candidate]:
    """Candidates in their typical first-reach order (stage first, then a majority vote over pairs).

    ``a`` goes before ``b`` when, among learners who reached both, more reached
    ``a`` first; each candidate is ranked by how many others it precedes
    (Copeland score), ties by the median first-reach time.

    >>> a = Candidate("a", "section", "A", "engagement", first={"1": 1.0, "2": 5.0})
    >>> b = Candidate("b", "section", "B", "engagement", first={"1": 2.0, "2": 6.0, "3": 0.0})
    >>> [c.key for c in typical_order([b, a])]
    ['a', 'b']
    """
    learners = sorted({lid for c in cands for lid in c.first})
    index = {lid: i for i, lid in enumerate(learners)}
    t = np.full((len(learners), len(cands)), np.nan)
    for j, c in enumerate(cands):
        for lid, when in c.first.items():
            t[index[lid], j] = when
    wins = np.zeros(len(cands))
    for j in range(len(cands)):
        both = ~np.isnan(t[:, j:j + 1]) & ~np.isnan(t)
        before = ((t[:, j:j + 1] < t) & both).sum(axis=0)
        after = ((t[:, j:j + 1] > t) & both).sum(axis=0)
        wins[j] = (before > after).sum()
    medians = [float(np.median(list(c.first.values()))) if c.first else float("inf") for c in cands]
    stage_pos = {s: i for i, s in enumerate(STAGES)}
    order = sorted(range(len(cands)), key=lambda j: (stage_pos.get(cands[j].stage, 2), -wins[j], medians[j], cands[j].key))
    return [cands[j] for j in order]


# --------------------------------------------------------------------------
# the draft
# --------------------------------------------------------------------------

def draft(paths: list[str | Path], *, source_type: str | None = None, course: str | None = None,
          max_touchpoints: int = 30, min_share: float = 0.02) -> Draft:
    """Read exports with the presets and draft the touchpoints of one course (see the module docstring).

    ``min_share``: a candidate reached by fewer than this share of the
    course's learners (or by one learner, when there are 5 or more) is left
    out and listed as not placed; so are candidates past ``max_touchpoints`` (the least reached).
    """
    from .sources import detect_type

    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise DataError("file not found", file=p)
    kinds = {source_type or detect_type(p) for p in paths}
    if len(kinds) != 1:
        raise DataError(f"the files are of different types ({', '.join(sorted(kinds))}); give --source-type or draft one type at a time")
    kind = kinds.pop()
    records = list(_records(paths, kind, []))
    staff = _staff_users(records, kind)
    if staff:
        records = list(_records(paths, kind, staff))
    courses = Counter()
    learners_by_course: dict[str, set] = defaultdict(set)
    for r in records:
        if r.get("learner_id") and not r.get("__error"):
            learners_by_course[r.get("__course") or ""].add(r["learner_id"])
    courses.update({c: len(v) for c, v in learners_by_course.items() if c and c != "0"})
    chosen = course or (courses.most_common(1)[0][0] if courses else None)
    if course and courses and not any(course_matches(c, [course]) for c in courses):
        raise DataError(f"course {course!r} is not in the data; courses found: {', '.join(c for c, _ in courses.most_common(10))}")
    good = [r for r in records if r.get("learner_id") and not r.get("__error")
            and (chosen is None or not courses or course_matches(r.get("__course"), [chosen]) or not r.get("__course"))]
    builders = {"edx": _edx_candidates, "moodle": _moodle_candidates, "moodle-report": _report_candidates, "xapi": _xapi_candidates}
    cands, unplaced = builders[kind](good)
    rejected = Counter(r["__error"] for r in records if r.get("__error")
                       and (chosen is None or not r.get("__course") or course_matches(r.get("__course"), [chosen])))
    n_learners = len({r["learner_id"] for r in good})
    floor = 1 if n_learners < 5 else 2  # a handful of learners: every touchpoint any of them reached
    keep = [c for c in cands.values() if c.learners >= max(floor, min_share * n_learners)]
    keep = sorted(keep, key=lambda c: -c.learners)[:max_touchpoints]
    left_out = sorted((c for c in cands.values() if c not in keep), key=lambda c: -c.learners)
    return Draft(kind, chosen, courses, typical_order(keep), n_learners, len(records), rejected, unplaced, left_out,
                 staff, sorted(k for k in unplaced if k in SKIPPED_KINDS), [str(p) for p in paths],
                 timezone="UTC", dormancy_days=dormancy_from(keep))


def dormancy_from(cands: list[Candidate]) -> int:
    """A draft dormancy window: twice the 90th percentile of the days between a learner's successive
    first reaches, within 7..60 days (30 when there is nothing to measure).

    >>> dormancy_from([Candidate("a", "section", "A", "engagement", first={"1": 0.0}),
    ...                Candidate("b", "section", "B", "engagement", first={"1": 86400.0 * 5})])
    10
    """
    per: dict[str, list[float]] = defaultdict(list)
    for c in cands:
        for lid, t in c.first.items():
            per[lid].append(t)
    gaps = [b - a for ts in per.values() for a, b in zip(sorted(ts), sorted(ts)[1:]) if b > a]
    if not gaps:
        return 30
    return int(min(60, max(7, np.ceil(2 * np.percentile(gaps, 90) / 86400))))


# --------------------------------------------------------------------------
# writing journey.yml and sources.yml
# --------------------------------------------------------------------------

_CONVERSION = {"enrolment": 0.8, "about": 0.3, "course": 0.85}


def draft_kpis(c: Candidate) -> list[tuple[str, float]]:
    """Placeholder KPIs that the data can measure: pass rate and score where results were recorded,
    completion where completions were, reach at the end of the course, conversion otherwise.

    >>> draft_kpis(Candidate("q", "quiz", "Quiz", "engagement", events=Counter(passed=3, failed=1), valued=4))
    [('pass_rate', 0.7), ('score', 0.7)]
    """
    if c.stage in ("completion", "after"):
        return [("reach", max(1, len(c.first)))]
    if c.kind in _CONVERSION:
        return [("conversion", _CONVERSION[c.kind])]
    out = [("conversion", 0.7)] if c.kind == "section" else []
    if c.events["passed"] + c.events["failed"]:
        out.append(("pass_rate", 0.7))
    if c.valued:
        out.append(("score", 0.7))
    if len(out) <= (c.kind == "section") and c.events["completed"]:
        out.append(("completion", 0.8))
    return out or [("conversion", 0.7)]


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _ids(cands: list[Candidate]) -> list[str]:
    out, seen = [], Counter()
    for c in cands:
        base = re.sub(r"[^a-z0-9]+", "_", c.name.lower()).strip("_")[:40] or c.kind
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return out


def journey_yaml(d: Draft, name: str | None = None) -> str:
    """The drafted ``journey.yml`` text (placeholders marked ``to review``).

    >>> d = draft(["tests/fixtures/sources/xapi_course.jsonl"])
    >>> from journeylib.model import map_from_dict
    >>> import yaml
    >>> len(map_from_dict(yaml.safe_load(journey_yaml(d))).touchpoints) == len(d.touchpoints)
    True
    """
    ids = _ids(d.touchpoints)
    stages = [s for s in STAGES if any(t.stage == s for t in d.touchpoints)]
    lines = [
        "# Drafted by `journey init` from " + ", ".join(Path(f).name for f in d.files) + f" ({dt.date.today().isoformat()}).",
        "# Everything marked 'to review' is a placeholder: set purposes, target emotions and KPI targets before sharing reports.",
        f"name: {_q(name or ('Course ' + d.course if d.course else 'Drafted course journey'))}",
        f"description: {_q('Drafted from the data of ' + str(d.learners) + ' learners (to review)')}",
        f"dormancy_days: {d.dormancy_days}   # no event for this long and not at the end = stopped; from the gaps in the data (to review)",
        "stages:",
    ]
    lines += [f"  - {{id: {s}, name: {_q(STAGES[s][0])}, learner_goal: {_q(STAGES[s][1])}}}" for s in stages]
    lines.append("touchpoints:")
    for tid, c in zip(ids, d.touchpoints):
        lines += [f"  - id: {tid}", f"    name: {_q(c.name)}", f"    stage: {c.stage}",
                  f"    purpose: {_q('to review: why learners meet ' + c.name)}",
                  f"    target_emotion: {{label: {_EMOTION[c.stage]}}}   # to review",
                  f"    # reached by {c.learners} learners in the drafted data ({c.records} records)"]
        kpis = draft_kpis(c)
        lines.append("    kpis:   # targets to review")
        lines += [f"      - {{metric: {m}, target: {t}}}" for m, t in kpis]
    path = [tid for tid, c in zip(ids, d.touchpoints) if c.stage not in ("before", "after")]
    lines += ["funnels:", f"  course: [{', '.join(path)}]   # the course's path in its typical order (to review)"]
    return "\n".join(lines) + "\n"


def _yaml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def sources_yaml(d: Draft) -> str:
    """The drafted ``sources.yml`` text: course scope, staff users and one rule per touchpoint (full ids).

    >>> d = draft(["tests/fixtures/sources/xapi_course.jsonl"])
    >>> from journeylib.sources.rules import SourceRules
    >>> import yaml
    >>> len(SourceRules.model_validate(yaml.safe_load(sources_yaml(d))).xapi.rules) >= len(d.touchpoints)
    True
    """
    section = SOURCE_SECTION[d.source_type]
    ids = _ids(d.touchpoints)
    lines = ["# Drafted by `journey init`: rules map raw records to the touchpoints of journey.yml (to review).",
             f"timezone: {_q(d.timezone)}   # zone of timestamps without one (the Moodle log report's Time)"]
    if d.course:
        lines.append(f"course: {_yaml_value(d.course)}   # records of other courses are counted as 'other course', not stored")
    if d.staff:
        lines.append(f"staff_users: {_yaml_value(d.staff)}   # found acting as staff: their records are never a learner's")
    lines += [f"{section}:", "  rules:"]
    for tid, c in zip(ids, d.touchpoints):
        lines.append(f"    # {c.name}: {c.learners} learners")
        lines += [f"    - match: {_yaml_value(rule)}\n      touchpoint: {tid}" for rule in c.rules]
    for k in d.skip_kinds:
        lines.append(f"    - match: {{kind: {k}}}\n      skip: {_q(SKIPPED_KINDS[k])}")
    return "\n".join(lines) + "\n"


def suggest(directory: str | Path) -> list[tuple[str, list[Candidate]]]:
    """Rules for the records of ``DIR/store.duckdb`` that no rule mapped, per source section, most learners first.

    The rejected records are interpreted again with the presets and grouped the
    way :func:`draft` groups them (Open edX sections with their subsections and
    blocks, Moodle activities, xAPI modules or activities), with full ids.

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> from journeylib.store import ingest_files
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/xapi_course.jsonl"], ws, load_map(ws / "journey.yml"))
    >>> [(section, [c.name for c in cands][:2]) for section, cands in suggest(ws)]
    [('xapi', ['Enrolment', 'Module 1: Orientation'])]
    """
    from .sources import edx, moodle, xapi
    from .sources.base import NO_RULE
    from .store import STORE_FILE, connect

    directory = Path(directory)
    con = connect(directory / STORE_FILE, read_only=True)
    try:
        rows = con.execute(
            """SELECT l.source_type, r.record, r."row" FROM rejected r JOIN ingest_log l USING (ingest_id)
               WHERE r.reason = ? AND r.record IS NOT NULL""", [NO_RULE]).fetchall()
    finally:
        con.close()
    by_type: dict[str, list[dict]] = defaultdict(list)
    seen: Counter = Counter()
    for kind, record, row in rows:
        try:
            doc = json.loads(record)
        except ValueError:
            continue
        if kind == "edx":
            rec = edx.edx_record(row or 0, record)
        elif kind == "moodle" and isinstance(doc, dict):
            rec = moodle.logstore_record(row or 0, {k: "" if v is None else str(v) for k, v in doc.items()}, record)
        elif kind == "moodle-report" and isinstance(doc, dict):
            rec = moodle.report_record(row or 0, doc, record, seen)
        elif kind == "xapi":
            rec = xapi.statement_record(doc, row or 0)
        else:
            continue
        if rec.get("learner_id") and not rec.get("__error"):
            by_type[kind].append(rec)
    builders = {"edx": _edx_candidates, "moodle": _moodle_candidates, "moodle-report": _report_candidates, "xapi": _xapi_candidates}
    out = []
    for kind, recs in by_type.items():
        cands, _ = builders[kind](recs)
        out.append((SOURCE_SECTION[kind], sorted(cands.values(), key=lambda c: (-c.learners, c.key))))
    return out


def suggestion_yaml(section: str, cands: list[Candidate]) -> str:
    """Ready-to-paste ``sources.yml`` rules (and touchpoint stubs for ``journey.yml``) for one source section.

    >>> print(suggestion_yaml("xapi", [Candidate("https://lms/m5", "section", "Module 5", "engagement",
    ...       rules=[{"section": "https://lms/m5"}], first={"u1": 0.0}, records=3)]))
    # sources.yml, under xapi: rules:
        # Module 5: 1 learners, 3 records
        - match: {section: 'https://lms/m5'}
          touchpoint: module_5
    # journey.yml, under touchpoints: (to review)
      - {id: module_5, name: "Module 5", stage: engagement, target_emotion: {label: confident}}
    """
    ids = _ids(cands)
    lines = [f"# sources.yml, under {section}: rules:"]
    for tid, c in zip(ids, cands):
        lines.append(f"    # {c.name}: {c.learners} learners, {c.records} records")
        lines += [f"    - match: {_yaml_value(rule)}\n      touchpoint: {tid}" for rule in c.rules]
    lines.append("# journey.yml, under touchpoints: (to review)")
    lines += [f"  - {{id: {tid}, name: {_q(c.name)}, stage: {c.stage}, target_emotion: {{label: {_EMOTION[c.stage]}}}}}"
              for tid, c in zip(ids, cands)]
    return "\n".join(lines)


def write_draft(directory: str | Path, d: Draft, *, force: bool = False, name: str | None = None) -> list[Path]:
    """Write ``journey.yml`` and ``sources.yml`` into ``directory``; refuses to overwrite without ``force``.

    Both texts are validated (the map with its rules) before anything is written.
    """
    import yaml

    from .model import map_from_dict
    from .sources.rules import SourceRules

    directory = Path(directory)
    targets = [directory / "journey.yml", directory / "sources.yml"]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise DataError("a map is already there; use --force to replace it with a new draft", file=existing[0])
    if not d.touchpoints:
        raise DataError("found no touchpoint learners reached; check the course and the source type",
                        file=d.files[0] if d.files else None)
    jtext, stext = journey_yaml(d, name), sources_yaml(d)
    jmap = map_from_dict(yaml.safe_load(jtext))
    SourceRules.model_validate(yaml.safe_load(stext)).check_touchpoints(jmap.touchpoint_ids)
    directory.mkdir(parents=True, exist_ok=True)
    for p, text in zip(targets, (jtext, stext)):
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    return targets
