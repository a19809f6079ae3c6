"""The source stage: positions, strict YAML, limits."""

from __future__ import annotations

import pytest

from archspec.errors import SourceError
from archspec.source import load_text


def test_positions_of_keys_and_values():
    located = load_text("a: 1\nb:\n  - {c: 2}\n")
    assert located.data == {"a": 1, "b": [{"c": 2}]}
    assert located.values[("a",)] == (1, 4)
    assert located.keys[("b", 0, "c")] == (3, 6)
    assert located.values[("b", 0, "c")] == (3, 9)


@pytest.mark.parametrize("text, value", [
    ("x: no", "no"), ("x: on", "on"), ("x: yes", "yes"), ("x: 010", 10), ("x: 1e3", 1000.0),
    ("x: 1:30", "1:30"), ("x: 2024-01-01", "2024-01-01"), ("x: true", True), ("x: 0x10", 16), ("x: '5'", "5"),
])
def test_yaml_1_2_scalars(text, value):
    got = load_text(text).data["x"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, code, line, col", [
    ("a: 1\na: 2\n", "yaml.duplicate_key", 2, 1),
    ("a: &x 1\nb: *x\n", "yaml.anchor", 1, 4),
    ("<<: {a: 1}\n", "yaml.merge_key", 1, 1),
    ("a: !!python/object:os.system 1\n", "yaml.tag", 1, 4),
    ("a: 123456789012345678901\n", "yaml.int_too_long", 1, 4),
    ("a: .inf\n", "yaml.nonfinite", 1, 4),
    ("a: 1\n---\nb: 2\n", "yaml.multi_document", 2, 1),
    ("a: [1, 2\n", "yaml.syntax", 2, 1),
    ("", "yaml.empty", 1, 1),
])
def test_refusals_are_located(text, code, line, col):
    with pytest.raises(SourceError) as info:
        load_text(text, "t.yaml")
    assert info.value.code == code
    assert (info.value.location.line, info.value.location.col) == (line, col)


def test_deep_flow_nesting_is_refused_without_reaching_libyaml():
    with pytest.raises(SourceError) as info:
        load_text("[" * 50_000)
    assert info.value.code == "yaml.too_deep"


def test_bom_and_bad_utf8():
    assert load_text(b"\xef\xbb\xbfa: 1").data == {"a": 1}
    with pytest.raises(SourceError, match="UTF-8"):
        load_text(b"a: \xff")
