"""Keys: JSON-able dicts of everything that determines a result (a sweep's resume key, a
study stage's key), compared as they read back from the JSON file they are kept in."""
from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = ['as_json', 'changed_keys']


def as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


def changed_keys(current: Mapping, recorded: Mapping) -> list[str]:
    """The top-level entries whose values differ between two keys, sorted."""
    return sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
