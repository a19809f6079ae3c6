"""Differential testing of the compiler over generated valid specs (tests/differential/).

For each spec: the generated forward, a plain walk of the typed graph, the Python export and the
generator's own intent agree in float64 (eval and train); static layout, shapes, params and MACs are what
the module does; gradients reach every parameter that train mode uses. CI runs 500 specs; a longer run by
hand: `python tests/differential/run_many.py --count 20000`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from differential.check import check_spec
from differential.specgen import specs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archspec
from archspec.cli import main as cli_main
from archspec.errors import ArchspecError
from archspec.spec.names import TORCH_MODULE_ATTRIBUTES

IN_CI = bool(os.environ.get("CI"))
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny float64 tensors: threads only add overhead (and the two cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@settings(max_examples=500 if IN_CI else 80, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(specs())
def test_generated_specs_agree_everywhere(case):
    data, intent = case
    with tempfile.TemporaryDirectory() as tmp:
        check_spec(data, intent, Path(tmp))


def _names(data) -> list[tuple[tuple, str]]:
    """(path, name) of every named node at the top level and in blocks."""
    found = [(("nodes", i), n["name"]) for i, n in enumerate(data["nodes"]) if "name" in n]
    for block, body in data.get("blocks", {}).items():
        found += [(("blocks", block, "nodes", i), n["name"]) for i, n in enumerate(body["nodes"]) if "name" in n]
    return found


RESERVED = ["input", "input0", "training", "forward", "type", "state_dict", "_modules", "compile", "cuda",
            "arch_name", "generated_code", "_archspec_block", "__class__"]


@settings(max_examples=120 if IN_CI else 30, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(specs(max_nodes=5), st.sampled_from(RESERVED), st.data())
def test_a_reserved_name_is_refused_where_it_stands(case, reserved, data):
    """Rename one node of a valid spec to a reserved name: validate refuses it at that node's name."""
    spec, _ = case
    named = _names(spec)
    path, _ = data.draw(st.sampled_from(named)) if named else (None, None)
    if path is None:
        return
    node = spec
    for part in path:
        node = node[part]
    node["name"] = reserved
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "spec.yaml"
        file.write_text(yaml.safe_dump(spec, sort_keys=False))
        with pytest.raises(ArchspecError) as err:
            archspec.compile(file)
        assert err.value.code == "schema.reserved_name"
        line = file.read_text().splitlines()[err.value.location.line - 1]
        assert f"name: {reserved}" in line, (err.value.format(), line)


@settings(max_examples=150 if IN_CI else 40, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(specs(max_nodes=6), st.data())
def test_validate_ok_implies_build_never_exits_4(case, data):
    """Mutated specs (a value changed, a node dropped or duplicated): whatever `validate` accepts, `build`
    builds or refuses with a located error; exit 4 (internal error) is never reached."""
    spec, _ = case
    mutate(spec, data)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "spec.yaml"
        file.write_text(yaml.safe_dump(spec, sort_keys=False))
        validated = cli_main(["validate", str(file)])
        assert validated in (0, 1, 2, 3)
        if validated == 0:
            assert cli_main(["build", str(file), "--depth", "0"]) in (0, 1, 3)


def mutate(spec: dict, data) -> None:
    nodes = spec["nodes"]
    kind = data.draw(st.sampled_from(["value", "drop", "duplicate", "rename", "when"]))
    i = data.draw(st.integers(0, len(nodes) - 1))
    if kind == "drop" and len(nodes) > 1:
        nodes.pop(i)
    elif kind == "duplicate":
        nodes.insert(i, dict(nodes[i]))
    elif kind == "rename" and "name" in nodes[i]:
        nodes[i]["name"] = data.draw(st.sampled_from([n.get("name", "x") for n in nodes] +
                                                     sorted(TORCH_MODULE_ATTRIBUTES)[:5] + ["block", "input_"]))
    elif kind == "when":
        nodes[i]["when"] = data.draw(st.sampled_from(["flag", "not flag", False, "flag and 1"]))
    else:
        key = data.draw(st.sampled_from(sorted(nodes[i])))
        nodes[i][key] = data.draw(st.sampled_from([0, 1, 2, -1, 3, "flag", "x", [1, 2], None, True]))


@pytest.mark.parametrize("spec", sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_validate_ok_implies_build_ok_for_shipped_specs(spec):
    assert cli_main(["validate", str(spec)]) == 0
    assert cli_main(["build", str(spec), "--depth", "0", "--meta"]) == 0
