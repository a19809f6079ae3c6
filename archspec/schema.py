"""JSON Schema of spec files, for editors (yaml-language-server, PyCharm): draft-07, because those
tools do not take 2020-12. pydantic's output is converted, and every known block gets an if/then
branch that lists its params, so editors complete and check block args."""

from __future__ import annotations

import json
from typing import Any

from archspec.spec.models import CallNode, SpecFile, VariantFile

DRAFT7 = "http://json-schema.org/draft-07/schema#"
EXPRESSION = {"type": "string", "description": "an expression over params, e.g. `planes * 4`"}


def _to_draft7(node: Any) -> Any:
    """$defs -> definitions, prefixItems -> items list; drop keywords draft-07 does not know."""
    if isinstance(node, list):
        return [_to_draft7(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$defs":
            out["definitions"] = _to_draft7(value)
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "prefixItems":
            out["items"] = _to_draft7(value)
        elif key == "discriminator":
            continue
        else:
            out[key] = _to_draft7(value)
    return out


def _arg_schema(field_schema: dict) -> dict:
    """A block arg is either its literal type or an expression string (or a param's name)."""
    plain_string = field_schema.get("type") == "string" and "enum" not in field_schema and "const" not in field_schema
    return field_schema if plain_string else {"anyOf": [field_schema, EXPRESSION]}


def _block_branches() -> list[dict]:
    from archspec.blocks import shipped_blocks
    from archspec.ops import REGISTRY

    base = {name: {} for name in CallNode.model_fields} | {"from": {}}
    base.pop("from_", None)
    branches = []
    for name in sorted(REGISTRY):
        args = REGISTRY[name].Args.model_json_schema()
        props = {k: _arg_schema(_to_draft7(v)) for k, v in args.get("properties", {}).items()}
        branches.append((name, props, args.get("definitions", {})))
    for name, (block, _) in sorted(shipped_blocks().items()):
        props = {k: _arg_schema({"description": d.doc, **({"enum": d.choices} if d.choices else {})})
                 for k, d in block.params.items()}
        branches.append((name, props, {}))
    return [{"if": {"properties": {"block": {"const": name}}, "required": ["block"]},
             "then": {"properties": {**base, **props}, "additionalProperties": False}}
            for name, props, _ in branches]


def spec_schema() -> dict:
    spec = _to_draft7(SpecFile.model_json_schema(by_alias=True))
    definitions = spec.pop("definitions")
    definitions["CallNode"]["allOf"] = _block_branches()
    variant = _to_draft7(VariantFile.model_json_schema(by_alias=True))
    definitions.update(variant.pop("definitions", {}))
    definitions["SpecFile"] = spec
    definitions["VariantFile"] = variant
    schema: dict = {"definitions": definitions,
                    "if": {"required": ["extends"], "not": {"required": ["nodes"]}},
                    "then": {"$ref": "#/definitions/VariantFile"},
                    "else": {"$ref": "#/definitions/SpecFile"}}
    schema["$schema"] = DRAFT7
    schema["title"] = "archspec spec file"
    schema["description"] = ("A network written as YAML block tables. Block args may be expressions. "
                             "Blocks defined in the spec itself are accepted with any args here and "
                             "checked by `archspec validate`.")
    return schema


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
