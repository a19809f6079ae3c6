"""Bad specs give located errors with stable codes, through the API and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.errors import ArchspecError, ErrorGroup

BAD = Path(__file__).parent / "bad"
EXPECTED = {k: v for k, v in json.loads((BAD / "expected.json").read_text()).items() if not k.startswith("_")}


def first_error(path: Path) -> ArchspecError:
    with pytest.raises(ArchspecError) as info:
        archspec.compile(path, archspec.Limits(max_params=100_000_000))
    err = info.value
    return err.errors[0] if isinstance(err, ErrorGroup) else err


def test_corpus_is_complete():
    assert sorted(EXPECTED) == sorted(p.name for p in BAD.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_located_error(name):
    code, line, col = EXPECTED[name]
    err = first_error(BAD / name)
    assert (err.code, err.location.line, err.location.col) == (code, line, col), err.format()
    assert err.location.file.endswith(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_exits_nonzero_without_traceback(name):
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(BAD / name),
                           "--max-params", "100000000"], capture_output=True, text=True, timeout=60)
    assert proc.returncode in (1, 3)
    assert "Traceback" not in proc.stderr + proc.stdout
    code, line, col = EXPECTED[name]
    assert f"{name}:{line}:{col}:" in proc.stderr and f"[{code}]" in proc.stderr


def test_hints_suggest_close_names():
    assert "did you mean 'kernel'" in first_error(BAD / "typo_key.yaml").hint
    assert "'relu'" in first_error(BAD / "unknown_block.yaml").hint
    assert "did you mean 'b'" in first_error(BAD / "dangling_from.yaml").hint
    assert "did you mean 'stride'" in first_error(BAD / "unknown_block_param.yaml").hint


def test_error_inside_a_composite_names_the_call_site(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("archspec: 1\nname: s\ninput: [3, 8, 8]\nnodes:\n"
                    "  - {name: blk, block: OSBlock, out: 10, bottleneck_reduction: 20}\n")
    err = first_error(spec)
    assert "OSBlock at" in err.hint and "s.yaml:5:5" in err.hint


def test_json_diagnostics():
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", "--json", str(BAD / "typo_key.yaml")],
                          capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert report[0]["errors"][0]["code"] == "schema.extra_forbidden"
    assert report[0]["errors"][0]["line"] == 5


def test_missing_file_and_bad_override(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot read file" in proc.stderr
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", "validate", str(root / "specs/resnet50.yaml"),
                           "--set", "num_clases=3"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "did you mean 'num_classes'" in proc.stderr


def test_independent_errors_are_all_reported():
    with pytest.raises(ErrorGroup) as info:
        archspec.compile(BAD / "several_errors.yaml")
    found = [(e.code, e.location.line, e.location.col) for e in info.value.errors]
    lines = (BAD / "several_errors.yaml").read_text().splitlines()

    def at(line: int, word: str) -> int:  # 1-based column of `word` on a 1-based line
        return lines[line - 1].index(word) + 1

    # an unknown arg points at its key; an unknown block at the block name
    assert found == [("schema.extra_forbidden", 5, at(5, "kernal:")), ("schema.unknown_block", 6, at(6, "rellu")),
                     ("schema.extra_forbidden", 7, at(7, "strid:"))]
    assert [c for *_, c in found] == [38, 22, 38]
    assert [e.location.path for e in info.value.errors] == [
        ("nodes", 0, "kernal"), ("nodes", 1, "block"), ("nodes", 2, "strid")]


@pytest.mark.parametrize("argv", [["build"], ["frobnicate", "x.yaml"], ["build", "x.yaml", "--depth", "two"],
                                  ["validate", "x.yaml", "--max-params", "lots"]])
def test_usage_errors_exit_2(argv):
    proc = subprocess.run([sys.executable, "-m", "archspec.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_internal_error_exits_4_without_traceback(monkeypatch, capsys):
    """A bug inside archspec (here: the summary raising) is exit 4 with a report-it hint, not a traceback."""
    import archspec.cli as cli

    def broken(*_args, **_kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(archspec, "summary", broken)
    root = Path(__file__).resolve().parent.parent
    assert cli.main(["build", str(root / "specs/osnet_x0_25.yaml")]) == 4
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: planted failure" in err and "bug in archspec" in err
    assert "Traceback" not in err


def test_exit_codes_are_the_documented_ones():
    from archspec import cli

    assert (cli.EXIT_OK, cli.EXIT_INVALID, cli.EXIT_USAGE, cli.EXIT_LIMIT, cli.EXIT_INTERNAL) == (0, 1, 2, 3, 4)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "(1 invalid, 2 usage, 3 refused by a cap, 4 internal error)" in readme
