"""Hypothesis strategies from the exported JSON Schema (the subset archspec emits).

hypothesis-jsonschema does not run with current hypothesis releases, and it cannot break the recursive
`seq` reference; this translator follows references to a bounded depth and draws each call node from
one block's own if/then branch, so generated specs reach the block checks, not only the header checks.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3), max_leaves=8)


def strategy(schema: dict, defs: dict, depth: int = 3) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _definition(name, defs, depth - 1) if depth > 0 else st.none()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([strategy(s, defs, depth) for s in schema[key]])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
    if kind == "number":
        return st.floats(schema.get("minimum", -1e9), schema.get("maximum", 1e9), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        limit = min(schema.get("maxLength", 24), 24)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= limit)
        return st.text(max_size=limit)
    if kind == "array":
        items = strategy(schema.get("items", {}), defs, depth)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        return _object(schema, defs, depth)
    return JSONISH


def _object(schema: dict, defs: dict, depth: int) -> st.SearchStrategy[dict]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = {k: strategy(v, defs, depth) for k, v in props.items() if k in required}
    optional = {k: strategy(v, defs, depth) for k, v in props.items() if k not in required}
    base = st.fixed_dictionaries(fixed, optional=optional)
    patterns = schema.get("patternProperties", {})
    if not patterns:
        return base
    pattern, value = next(iter(patterns.items()))
    extra = st.dictionaries(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= 16),
                            strategy(value, defs, depth), max_size=3)
    return st.tuples(base, extra).map(lambda pair: {**pair[1], **pair[0]})


def _definition(name: str, defs: dict, depth: int) -> st.SearchStrategy[Any]:
    if name != "CallNode":
        return strategy(defs[name], defs, depth)
    call = defs["CallNode"]
    branches = []
    for branch in call["allOf"]:
        props = {k: (call["properties"].get(k, v) if not v else v) for k, v in branch["then"]["properties"].items()}
        props["block"] = {"const": branch["if"]["properties"]["block"]["const"]}
        branches.append(_object({"properties": props, "required": ["block"]}, defs, depth))
    return st.one_of(branches)


def spec_documents(schema: dict) -> st.SearchStrategy[dict]:
    return strategy({"$ref": "#/definitions/SpecFile"}, schema["definitions"], depth=4)
