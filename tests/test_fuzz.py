"""Fuzzing: mutations of every shipped spec, instances of the JSON Schema, and atheris."""

from __future__ import annotations

import json
import os
import re
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
    path = ROOT / "specs/generated.yaml"
    try:
        lower(parse(path, text=text), Limits(max_params=10**8, max_calls=20_000))
    except ArchspecError as exc:
        assert_located(exc, path, text)


CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def assert_located(exc: ArchspecError, path, text: str) -> None:
    """A real position: in the generated file (within its lines) or in a shipped block file, with a stable
    code, and printed as file:line:col."""
    for err in getattr(exc, "errors", None) or [exc]:
        loc = err.location
        assert CODE.fullmatch(err.code or ""), err.code
        assert loc.line >= 1 and loc.col >= 1, (err.code, loc)
        if loc.file == str(path):
            lines = text.splitlines() or [""]
            assert loc.line <= len(lines) + 1, (err.code, loc, len(lines))
            assert loc.col <= len(lines[min(loc.line, len(lines)) - 1]) + 2, (err.code, loc)
        else:
            assert loc.file.endswith(".yaml") and (ROOT / "archspec/blocks").as_posix() in loc.file, loc.file
        assert f"{loc.file}:{loc.line}:{loc.col}:" in err.format()


@pytest.mark.skipif(sys.platform != "linux", reason="atheris runs on Linux")
def test_atheris_harness(tmp_path):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in [*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests/bad").glob("*.yaml")]:
        shutil.copy(path, corpus / path.name)
    seeds = sum(1 for p in corpus.iterdir() if p.stat().st_size > 0)  # libFuzzer adds its finds to the folder
    seconds = 60 if IN_CI else 5
    proc = subprocess.run([sys.executable, str(FUZZ / "atheris_harness.py"), f"-max_total_time={seconds}",
                           "-timeout=10", "-rss_limit_mb=0", str(corpus)], capture_output=True, text=True,
                          timeout=seconds + 120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
    check_fuzzed(proc.stderr, seeds)


def check_fuzzed(log: str, seeds: int) -> None:
    """libFuzzer read the whole seed corpus, ran it through instrumented archspec, then fuzzed to the end."""
    found = re.search(r"seed corpus: files: (\d+)", log)
    assert found and int(found.group(1)) >= seeds, log[-2000:]
    inited = re.search(r"INITED cov: (\d+)", log)
    assert inited and int(inited.group(1)) > 500, log[-2000:]  # archspec's code is instrumented and reached
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    assert done and int(done.group(1)) > seeds, log[-2000:]  # past the seeds: mutated inputs ran too


CANARY = """
import sys
sys.path.insert(0, sys.argv.pop(1))
import atheris_harness as harness

real = harness.lower
def lower(spec, limits):  # a planted crash: any spec that reaches lowering with a node named `canary`
    if "canary" in str(spec.model.nodes):
        raise RuntimeError("planted")
    return real(spec, limits)
harness.lower = lower
harness.main()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="atheris runs on Linux")
def test_atheris_harness_reports_a_crash(tmp_path):
    """The harness is able to fail: a planted crash in lowering is found in the seed corpus."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "canary.yaml").write_text("archspec: 1\nname: c\ninput: [3, 8, 8]\nnodes:\n"
                                        "  - {name: canary, block: relu}\n")
    proc = subprocess.run([sys.executable, "-c", CANARY, str(FUZZ), "-runs=10", "-rss_limit_mb=0", str(corpus)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "RuntimeError: planted" in log, log[-2000:]
    assert list(tmp_path.glob("crash-*"))


def test_located_check_refuses_unlocated_errors():
    """The schema-fuzz assertion can fail: line 0, a line past the end, a malformed code, another file."""
    from archspec.errors import Location, SpecError

    path = ROOT / "specs/generated.yaml"
    text = "archspec: 1\nname: g\n"
    assert_located(SpecError("bad", Location(str(path), 2, 1), code="schema.x"), path, text)
    for loc, code in [(Location(str(path), 0, 0), "schema.x"), (Location(str(path), 9, 1), "schema.x"),
                      (Location(str(path), 1, 1), "No Code"), (Location("elsewhere.py", 1, 1), "schema.x")]:
        with pytest.raises(AssertionError):
            assert_located(SpecError("bad", loc, code=code), path, text)
