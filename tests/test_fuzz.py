"""Fuzzing: mutations of every shipped spec, instances of the JSON Schema, and atheris."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.errors import ArchspecError
from archspec.graph.limits import Limits
from archspec.graph.lower import lower
from archspec.schema import spec_schema
from archspec.spec.loader import parse

IN_CI = bool(os.environ.get("CI"))
FUZZ = ROOT / "tests/fuzz"
SCHEMA = spec_schema()
sys.path.insert(0, str(FUZZ))


def test_mutations_of_every_shipped_spec():
    count = 5000 if IN_CI else 1000
    proc = subprocess.run([sys.executable, str(FUZZ / "run_mutations.py"), "--count", str(count), "--seed", "0",
                           "--memory-mb", "2048"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["crash_count"] == 0, json.dumps(report["crashes"][:3], indent=1)
    assert report["count"] == count
    assert report["outcomes"].get("accepted", 0) > count // 20  # the mutants are not all trivially broken
    assert len(report["outcomes"]) > 15  # and they reach many different checks


@settings(max_examples=400 if IN_CI else 80, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_instances_of_the_schema_give_a_graph_or_a_located_error(data):
    from schema_strategy import spec_documents

    document = data.draw(spec_documents(SCHEMA))
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        lower(parse(ROOT / "specs/generated.yaml", text=text), Limits(max_params=10**8, max_calls=20_000))
    except ArchspecError as exc:
        assert exc.location.line >= 0 and exc.code


@pytest.mark.skipif(sys.platform != "linux", reason="atheris runs on Linux")
def test_atheris_harness(tmp_path):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in [*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests/bad").glob("*.yaml")]:
        shutil.copy(path, corpus / path.name)
    seconds = 60 if IN_CI else 5
    proc = subprocess.run([sys.executable, str(FUZZ / "atheris_harness.py"), f"-max_total_time={seconds}",
                           "-timeout=10", "-rss_limit_mb=0", str(corpus)], capture_output=True, text=True,
                          timeout=seconds + 120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
    assert "Done" in proc.stderr or "INITED" in proc.stderr
