from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
REFERENCE = Path(__file__).resolve().parent / "reference"
sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = json.loads((REFERENCE / "cases.json").read_text())["cases"]


@cache
def reference(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


def case_id(case: dict) -> str:
    return case["ref"] if not case.get("set") else f"{case['spec']}[{case['ref']}]"


@pytest.fixture(params=CASES, ids=case_id)
def case(request) -> dict:
    return request.param
