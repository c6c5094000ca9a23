"""Privacy for shared reports: small-cell suppression and no raw learner ids.

Reports shown to stakeholders

* suppress every cell computed from fewer than ``min_count`` learners: the
  count and the values derived from it are blanked and the row is marked
  (``suppressed = True``), so a reader sees "fewer than N" instead of a number;
* never show a raw learner id: ids are replaced by keyed pseudonyms
  (:func:`pseudonymise`) or the id columns are dropped (:func:`drop_ids`).

:func:`find_ids` checks rendered text for any known id; the report runner
uses it as a last line of defence.

>>> import polars as pl
>>> df = pl.DataFrame({"segment": ["a", "b"], "n": [3, 40], "rate": [0.33, 0.5]})
>>> suppress(df, count="n", values=["rate"], min_count=5).to_dicts()
[{'segment': 'a', 'n': None, 'rate': None, 'suppressed': True}, {'segment': 'b', 'n': 40, 'rate': 0.5, 'suppressed': False}]
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Iterable, Sequence

import polars as pl

#: Columns treated as direct identifiers of a learner or an event.
ID_COLUMNS = ("learner_id", "event_id")


def suppress(
    df: pl.DataFrame,
    *,
    count: str | Sequence[str] = "n",
    values: Sequence[str] | None = None,
    min_count: int = 5,
    flag: str = "suppressed",
) -> pl.DataFrame:
    """Blank the cells of every row whose count is below ``min_count`` and mark the row.

    Definition: a row is suppressed when any of the ``count`` columns is
    non-null and ``< min_count`` (a count of 0 is suppressed too: with
    ``min_count`` > 0 it is a small cell). In suppressed rows the count columns
    and the ``values`` columns (default: every numeric column other than the
    counts) become null; ``flag`` is True for them and False elsewhere. A row
    already flagged in an existing ``flag`` column stays flagged.

    >>> import polars as pl
    >>> df = pl.DataFrame({"tp": ["a", "b"], "n": [2, 9], "rate": [1.0, 0.4]})
    >>> suppress(df, count="n", min_count=5)["rate"].to_list()
    [None, 0.4]
    """
    if min_count < 1:
        raise ValueError("min_count must be at least 1")
    counts = [count] if isinstance(count, str) else list(count)
    missing = [c for c in counts if c not in df.columns]
    if missing:
        raise KeyError(f"count column(s) not in frame: {', '.join(missing)}")
    if values is None:
        values = [c for c, t in df.schema.items() if t.is_numeric() and c not in counts and c != flag]
    small = pl.lit(False)
    for c in counts:
        small = small | (pl.col(c).is_not_null() & (pl.col(c) < min_count))
    if flag in df.columns:
        small = small | pl.col(flag).fill_null(False)
    out = df.with_columns(small.alias("__small"))
    blank = [pl.when(pl.col("__small")).then(None).otherwise(pl.col(c)).alias(c) for c in [*counts, *values] if c in df.columns]
    return out.with_columns(blank).with_columns(pl.col("__small").alias(flag)).drop("__small")


def pseudonym(learner_id: str, key: str) -> str:
    """The pseudonym of one id under ``key``: ``"P-"`` + 10 hex chars of keyed BLAKE2b.

    >>> pseudonym("L0001", "k") == pseudonym("L0001", "k") != pseudonym("L0001", "other")
    True
    """
    digest = hashlib.blake2b(str(learner_id).encode("utf-8"), key=key.encode("utf-8")[:64], digest_size=5).hexdigest()
    return f"P-{digest}"


def new_key() -> str:
    """A fresh random pseudonymisation key (one per report run: pseudonyms do not link across runs).

    >>> len(new_key())
    32
    """
    return secrets.token_hex(16)


def pseudonymise(df: pl.DataFrame, *, column: str = "learner_id", key: str | None = None) -> pl.DataFrame:
    """Replace ``column`` by keyed pseudonyms (same id → same pseudonym within one key).

    Without ``key`` a random key is used, so the pseudonyms cannot be linked
    to other reports. Nulls stay null.

    >>> import polars as pl
    >>> out = pseudonymise(pl.DataFrame({"learner_id": ["a", "b", "a"]}), key="k")
    >>> out["learner_id"].n_unique(), out["learner_id"][0].startswith("P-")
    (2, True)
    """
    key = key or new_key()
    uniq = df[column].drop_nulls().unique().cast(pl.Utf8).to_list()
    mapping = {u: pseudonym(u, key) for u in uniq}
    return df.with_columns(pl.col(column).cast(pl.Utf8).replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias(column))


def drop_ids(df: pl.DataFrame, columns: Iterable[str] = ID_COLUMNS) -> pl.DataFrame:
    """Drop direct identifier columns (``learner_id``, ``event_id``) where present.

    >>> import polars as pl
    >>> drop_ids(pl.DataFrame({"learner_id": ["a"], "persona": ["p"]})).columns
    ['persona']
    """
    return df.drop([c for c in columns if c in df.columns])


_SCRIPT_RE = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.S | re.I)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-\.:@]+")


def find_ids(text: str, ids: Iterable[str], *, skip_numeric: bool = True, skip_scripts: bool = True) -> set[str]:
    """The ids from ``ids`` that occur in ``text`` as whole tokens.

    Tokens are runs of letters, digits and ``_-.:@``. Executable ``<script>``
    blocks (the inlined chart library) are skipped unless ``skip_scripts`` is
    False; JSON chart specs are kept. Purely numeric ids are skipped by default
    (they cannot be told apart from counts).

    >>> sorted(find_ids("<p>learner L007 stopped; L0070 did not</p>", ["L007", "L999"]))
    ['L007']
    """
    if skip_scripts:
        text = _SCRIPT_RE.sub(lambda m: m.group(0) if 'type="application/json"' in m.group(0)[:80] else " ", text)
    wanted = {str(i) for i in ids if i is not None and str(i) and not (skip_numeric and str(i).strip().isdigit())}
    if not wanted:
        return set()
    tokens = set(_TOKEN_RE.findall(text))
    # tokens may carry trailing punctuation from the allowed set, e.g. "L007." or "L007:"
    tokens |= {t.strip(".:-") for t in tokens}
    return wanted & tokens


# --------------------------------------------------------------------------
# Raw records: no IP address, name, e-mail or user agent is ever stored
# --------------------------------------------------------------------------

#: Keys removed wherever they occur in a raw record (compared lower-cased): network and
#: browser details, and personal names / e-mail addresses of Open edX, Moodle and xAPI records.
PERSONAL_KEYS = frozenset({
    "ip", "ip_address", "ipaddress", "remote_addr", "agent", "user_agent", "useragent", "http_user_agent",
    "username", "user_name", "email", "mail", "fullname", "full_name", "first_name", "last_name",
    "firstname", "lastname", "referer", "referrer", "accept_language", "session", "client_id",
    "user full name", "affected user", "ip address",
})
#: Keys that name an agent: an object holding one is a person (its ``name`` is removed too).
_AGENT_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_IPV4_RE = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.])")
_IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){3,7}[0-9A-Fa-f]{1,4}(?![\w:])|(?<![\w:])[0-9A-Fa-f]{0,4}::[0-9A-Fa-f:]{0,30}[0-9A-Fa-f](?![\w:])")


def hash_mbox(mbox: str) -> str:
    """``sha256:<hex>`` of the lower-cased, trimmed ``mailto:`` IRI; a value already hashed stays as it is.

    >>> hash_mbox("mailto:Ann@Example.org") == hash_mbox(" mailto:ann@example.org")
    True
    >>> hash_mbox(hash_mbox("mailto:a@b.org")) == hash_mbox("mailto:a@b.org")
    True
    """
    m = mbox.strip().lower()
    if m.startswith("sha256:"):
        return m
    if not m.startswith("mailto:"):
        m = "mailto:" + m
    return "sha256:" + hashlib.sha256(m.encode("utf-8")).hexdigest()


def scrub_text(text: str) -> str:
    """The text with e-mail addresses and IP addresses replaced by ``<email>`` and ``<ip>``.

    >>> scrub_text("ann@example.org logged in from 10.0.0.12 at 10:00:00")
    '<email> logged in from <ip> at 10:00:00'
    """
    if "@" in text:
        text = _EMAIL_RE.sub("<email>", text)
    if "." in text:
        text = _IPV4_RE.sub("<ip>", text)
    if ":" in text:
        text = _IPV6_RE.sub("<ip>", text)
    return text


_PAIR = r'\s*"(?:{keys})"\s*:\s*(?:"(?:[^"\\]|\\.)*"?|null|-?[\d.]+)\s*,?'
_PERSONAL_PAIR_RE = re.compile(_PAIR.format(keys="|".join(re.escape(k) for k in sorted(PERSONAL_KEYS))), re.IGNORECASE)
_NAME_PAIR_RE = re.compile(_PAIR.format(keys="name|" + "|".join(re.escape(k) for k in sorted(PERSONAL_KEYS))), re.IGNORECASE)


def scrub_raw_text(text: str, *, unparsed: bool = False) -> str:
    """Raw record text without personal ``"key": value`` pairs, e-mail or IP addresses.

    For a record that could not be parsed (a broken JSON line) ``unparsed``
    also removes every ``"name"`` pair, since it cannot be told whether it
    names a person.

    >>> scrub_raw_text('{"username": "ann", "agent": "Mozilla/5.0", "event_type": "x", "ip": "10.0.0.1"')
    '{ "event_type": "x",'
    >>> scrub_raw_text('{"actor": {"name": "Ann Lee", "mbox": "mailto:a@b.org"', unparsed=True)
    '{"actor": { "mbox": "mailto:<email>"'
    """
    text = (_NAME_PAIR_RE if unparsed else _PERSONAL_PAIR_RE).sub("", text)
    return scrub_text(text)


def _is_agent(obj: dict) -> bool:
    return obj.get("objectType") in ("Agent", "Group") or any(k in obj for k in _AGENT_KEYS)


def scrub_record(obj):
    """A copy of a parsed raw record without personal data, for storing.

    Removes :data:`PERSONAL_KEYS` anywhere, the ``name`` of any agent (an
    object with ``mbox``/``mbox_sha1sum``/``openid``/``account`` or
    ``objectType`` Agent/Group), replaces ``mbox`` by :func:`hash_mbox`, and
    e-mail or IP addresses inside any text by placeholders (:func:`scrub_text`).
    Ids needed to write a mapping rule (user ids, course and block ids, verbs,
    activity ids) are kept.

    >>> scrub_record({"username": "ann", "ip": "10.0.0.1", "context": {"user_id": 7},
    ...               "actor": {"name": "Ann Lee", "mbox": "mailto:ann@example.org"}})["actor"]["mbox"][:7]
    'sha256:'
    >>> sorted(scrub_record({"username": "ann", "ip": "10.0.0.1", "context": {"user_id": 7}}))
    ['context']
    """
    if isinstance(obj, dict):
        agent = _is_agent(obj)
        out = {}
        for k, v in obj.items():
            key = str(k).lower()
            if key in PERSONAL_KEYS or (agent and key == "name"):
                continue
            if key == "mbox" and isinstance(v, str):
                out[k] = hash_mbox(v)
            else:
                out[k] = scrub_record(v)
        return out
    if isinstance(obj, list):
        return [scrub_record(v) for v in obj]
    if isinstance(obj, str):
        return scrub_text(obj)
    return obj
