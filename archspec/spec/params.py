"""Typed params: checking defaults and user overrides against their declarations."""

from __future__ import annotations

from typing import Any

from archspec.spec.models import ParamDecl

_PY = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def check_value(decl: ParamDecl, value: Any) -> str | None:
    """Return a problem description, or None when `value` fits `decl`."""
    if decl.type == "any":
        return None
    if decl.type in ("ints", "floats"):
        item = (int,) if decl.type == "ints" else (int, float)
        if not isinstance(value, list) or not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            return f"expected a list of {decl.type[:-1]}s, got {type(value).__name__}"
        return None
    wanted = _PY[decl.type]
    if isinstance(value, bool) and decl.type != "bool" or not isinstance(value, wanted):
        return f"expected {decl.type}, got {type(value).__name__} {value!r:.40}"
    if decl.choices is not None and value not in decl.choices:
        return f"{value!r:.40} is not one of {decl.choices}"
    if decl.min is not None and isinstance(value, (int, float)) and value < decl.min:
        return f"{value} is below the minimum {decl.min:g}"
    if decl.max is not None and isinstance(value, (int, float)) and value > decl.max:
        return f"{value} is above the maximum {decl.max:g}"
    return None


def coerce(decl: ParamDecl, value: Any) -> Any:
    """Ints are accepted where floats are declared; keep them floats so `int(c * w)` behaves."""
    if decl.type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
