"""JSON Schema of spec files, for editors (yaml-language-server, PyCharm)."""

from __future__ import annotations

import json

from archspec.spec.models import SpecFile


def spec_schema() -> dict:
    schema = SpecFile.model_json_schema(by_alias=True)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "archspec spec file"
    return schema


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
