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


@pytest.mark.parametrize("use_libyaml", [True, False])
def test_deep_flow_nesting_is_refused_at_our_depth(use_libyaml):
    """libyaml scans a flow collection ahead and has its own depth limit (1,000): either parser must
    report archspec's limit, at the 65th `[`."""
    from archspec.source import LoaderLimits

    with pytest.raises(SourceError) as info:
        load_text("[" * 50_000, "t.yaml", LoaderLimits(use_libyaml=use_libyaml))
    assert info.value.code == "yaml.too_deep"
    assert (info.value.location.line, info.value.location.col) == (1, 65)


def test_libyaml_is_the_default_event_source():
    """What docs/hostile-input.md says: the C parser yields the events when PyYAML has it."""
    import yaml

    from archspec.source.loader import LoaderLimits, event_parser

    parser = event_parser("a: 1\n", LoaderLimits().use_libyaml)
    try:
        if yaml.__with_libyaml__:
            from yaml._yaml import CParser

            assert isinstance(parser, CParser)
        else:
            assert isinstance(parser, yaml.SafeLoader)
    finally:
        parser.dispose()
    fallback = event_parser("a: 1\n", use_libyaml=False)
    assert isinstance(fallback, yaml.SafeLoader)
    fallback.dispose()


def test_bom_and_bad_utf8():
    assert load_text(b"\xef\xbb\xbfa: 1").data == {"a": 1}
    with pytest.raises(SourceError, match="UTF-8"):
        load_text(b"a: \xff")


def test_size_limit_is_checked_before_parsing(tmp_path):
    from archspec.source import LoaderLimits, load_file

    text = "a: 1\n" + "# padding\n" * 200
    limits = LoaderLimits(max_bytes=len(text.encode()) - 1)
    with pytest.raises(SourceError) as info:
        load_text(text, "t.yaml", limits)
    assert info.value.code == "yaml.too_large" and (info.value.location.line, info.value.location.col) == (1, 1)
    assert f"at most {limits.max_bytes} bytes" in info.value.hint
    assert load_text(text, "t.yaml", LoaderLimits(max_bytes=len(text.encode()))).data == {"a": 1}  # at the cap
    path = tmp_path / "big.yaml"
    path.write_text(text)
    with pytest.raises(SourceError) as info:
        load_file(path, limits)
    assert info.value.code == "yaml.too_large"
    path.write_text("a: [" + "1, " * 400_000 + "1]\n")  # over the default 1 MiB
    with pytest.raises(SourceError) as info:
        load_file(path)
    assert info.value.code == "yaml.too_large" and "bytes" in info.value.message


def test_node_count_limit_points_at_the_first_node_over_it():
    from archspec.source import LoaderLimits

    text = "a: [1, 2, 3]\nb: [4, 5, 6]\n"  # 11 nodes: the mapping, a, [..], 1, 2, 3, b, [..], 4, 5, 6
    assert load_text(text, "t.yaml", LoaderLimits(max_nodes=11)).data == {"a": [1, 2, 3], "b": [4, 5, 6]}
    with pytest.raises(SourceError) as info:
        load_text(text, "t.yaml", LoaderLimits(max_nodes=10))
    assert info.value.code == "yaml.too_many_nodes"
    assert (info.value.location.line, info.value.location.col) == (2, 11)  # the 11th node: `6`
    assert "at most 10 nodes" in info.value.hint
    with pytest.raises(SourceError) as info:
        load_text("x: [" + "0, " * 200_001 + "0]\n")  # the default cap, 200,000
    assert info.value.code == "yaml.too_many_nodes"


@pytest.mark.parametrize("text, line, col", [
    ("? [a, b]\n: 1\n", 1, 3),
    ("{[a]: 1}\n", 1, 2),
    ("x:\n  ? {k: v}\n  : 1\n", 2, 5),
])
def test_complex_keys_are_refused(text, line, col):
    with pytest.raises(SourceError) as info:
        load_text(text, "t.yaml")
    assert info.value.code == "yaml.complex_key"
    assert (info.value.location.line, info.value.location.col) == (line, col)
