"""Checks of the architecture's checkable rules (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec.errors import SpecError
from archspec.graph.precheck import precheck
from archspec.spec.loader import parse

PACKAGE = Path(archspec.__file__).parent


def test_one_binding_implementation():
    """The unknown-arg rule lives in graph/binding.py alone; the pre-check and lowering both call it."""
    users = sorted(p.name for p in PACKAGE.rglob("*.py") if "unknown_arg_errors(" in p.read_text())
    assert users == ["binding.py", "lower.py", "precheck.py"]
    owners = [p.name for p in PACKAGE.rglob("*.py") if "has no param {" in p.read_text()]
    assert owners == ["binding.py"]


def test_the_precheck_reports_a_single_mistake_itself(tmp_path):
    """Before, the pre-check raised only for two or more mistakes and relied on lowering for a single one."""
    path = tmp_path / "s.yaml"
    path.write_text("archspec: 1\nname: s\ninput: [3, 8, 8]\nnodes:\n  - {name: c, block: conv2d, out: 4, kernal: 3}\n")
    spec = parse(path)
    with pytest.raises(SpecError) as info:
        precheck(spec, {})
    where = info.value.location
    assert info.value.code == "schema.extra_forbidden" and (where.line, where.col) == (5, 38)  # at `kernal`
    assert "did you mean 'kernel'" in info.value.hint
    with pytest.raises(SpecError) as again:
        archspec.compile(path)
    assert again.value.format() == info.value.format()


def test_init_schemes_are_resolved_once_into_the_ir(monkeypatch):
    """Lowering binds each `init:` scheme; the torch side applies the bound arguments and never parses."""
    from archspec.graph import init_rules

    graph = archspec.compile(Path(archspec.__file__).parent.parent / "specs/ft_net.yaml")
    assert graph.init and all(rule.paths and rule.schemes for rule in graph.init)
    key, scheme, kwargs = graph.init[0].schemes[0]
    assert key == "weight" and scheme == "kaiming_normal" and dict(kwargs)["mode"] in ("fan_in", "fan_out")

    def no_parsing(*args, **kwargs):
        raise AssertionError("the backend parsed an init scheme")

    monkeypatch.setattr(init_rules, "bind", no_parsing)
    monkeypatch.setattr(init_rules, "scheme_call", no_parsing)
    model = archspec.build(graph, seed=0)
    assert sum(p.numel() for p in model.parameters()) == graph.total_params
