"""Reading chart specs (Vega-Lite JSON) in tests."""

from __future__ import annotations

from typing import Any, Iterator


def nested_dicts(obj: Any) -> Iterator[dict]:
    """Every dict inside ``obj`` (itself included), depth first, in document order.

    >>> [d["a"] for d in nested_dicts({"a": 1, "b": [{"a": 2, "c": {"a": 3}}]})]
    [1, 2, 3]
    """
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from nested_dicts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from nested_dicts(v)
