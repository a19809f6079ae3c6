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


# ---- exact values, positions and messages: written to kill the mutants `mutmut` found surviving ----------
BOTH = pytest.mark.parametrize("use_libyaml", [True, False], ids=["libyaml", "python"])


@BOTH
@pytest.mark.parametrize("text, value", [
    ("", None), ("~", None), ("null", None), ("Null", None), ("NULL", None), ("nUll", "nUll"),
    ("true", True), ("True", True), ("TRUE", True), ("tRUE", "tRUE"),
    ("false", False), ("False", False), ("FALSE", False), ("fALSE", "fALSE"),
    ("+5", 5), ("-5", -5), ("0o17", 15), ("0x1F", 31), ("0O17", "0O17"), ("0X1F", "0X1F"), ("010", 10),
    ("12345678901234567890", 12345678901234567890), ("-12345678901234567890", -12345678901234567890),
    ("1.5", 1.5), (".5", 0.5), ("-1.5e-3", -0.0015), ("1e3", 1000.0), ("5.", 5.0), ("+.5", 0.5),
    ("'true'", "true"), ('"5"', "5"), ("'null'", "null"), ("5-", "5-"), ("1_000", "1_000"),
    ("x" * 10_000, "x" * 10_000),
])
def test_plain_scalars_resolve_by_yaml_1_2_core_rules(text, value, use_libyaml):
    from archspec.source import LoaderLimits

    got = load_text(f"k: {text}\n", "t.yaml", LoaderLimits(use_libyaml=use_libyaml)).data["k"]
    assert got == value and type(got) is type(value)


LOADER_ERRORS = [  # text, code, line, col, path, message, hint
    ("a: 1\na: 2\n", "yaml.duplicate_key", 2, 1, ("a",), "duplicate key 'a' (first at line 1)",
     "remove one of them; YAML would silently keep the last"),
    ("x:\n  b: 1\n  b: 2\n", "yaml.duplicate_key", 3, 3, ("x", "b"), "duplicate key 'b' (first at line 2)",
     "remove one of them; YAML would silently keep the last"),
    ("a: &x 1\nb: *x\n", "yaml.anchor", 1, 4, ("a",), "anchors and aliases are not allowed",
     "write the value out; use a table, repeat or composite block to avoid copies"),
    ("a: [1, *x]\n", "yaml.anchor", 1, 8, ("a", 1), "anchors and aliases are not allowed",
     "write the value out; use a table, repeat or composite block to avoid copies"),
    ("<<: {a: 1}\n", "yaml.merge_key", 1, 1, ("<<",), "merge keys (<<) are not allowed", "write the keys out"),
    ("a: !!str 1\n", "yaml.tag", 1, 4, ("a",), "explicit tag 'tag:yaml.org,2002:str' is not allowed",
     "remove the tag"),
    ("a:\n  - !foo 1\n", "yaml.tag", 2, 5, ("a", 0), "explicit tag '!foo' is not allowed", "remove the tag"),
    ("%TAG !e! tag:e.com,2000:\n---\na: 1\n", "yaml.tag", 1, 1, (), "%TAG directives are not allowed", ""),
    ("a: 123456789012345678901\n", "yaml.int_too_long", 1, 4, ("a",), "integer with 21 digits is too long",
     "integers may have at most 20 digits"),
    ("a: -123456789012345678901\n", "yaml.int_too_long", 1, 4, ("a",), "integer with 21 digits is too long",
     "integers may have at most 20 digits"),
    ("a: 1." + "1" * 63 + "\n", "yaml.int_too_long", 1, 4, ("a",), "number literal is too long", ""),
    ("a: .inf\n", "yaml.nonfinite", 1, 4, ("a",), ".inf is not allowed", "specs hold finite numbers only"),
    ("a: -.Inf\n", "yaml.nonfinite", 1, 4, ("a",), "-.Inf is not allowed", "specs hold finite numbers only"),
    ("a: .NaN\n", "yaml.nonfinite", 1, 4, ("a",), ".NaN is not allowed", "specs hold finite numbers only"),
    ("a: 1\n---\nb: 2\n", "yaml.multi_document", 2, 1, (), "more than one YAML document",
     "a spec file holds exactly one document"),
    ("a: [1, 2\n", "yaml.syntax", 2, 1, (), "YAML syntax: did not find expected ',' or ']'",
     "check indentation, colons and brackets"),
    ("", "yaml.empty", 1, 1, (), "the file is empty", "a spec starts with `archspec: 1`"),
    ("# only a comment\n", "yaml.empty", 1, 1, (), "the file is empty", "a spec starts with `archspec: 1`"),
    ("a: 1\nb: \x01\n", "yaml.control_character", 2, 4, (), "control character U+0001 is not allowed",
     "remove it; YAML allows tabs, newlines and printable characters only"),
    ("a: " + "x" * 10_001 + "\n", "yaml.scalar_too_long", 1, 4, ("a",), "scalar is 10001 characters long",
     "scalars may hold at most 10000 characters"),
    ("x:\n  ? {k: v}\n  : 1\n", "yaml.complex_key", 2, 5, (), "mapping keys must be plain strings", ""),
    (b"a: 1\nb: \xff", "yaml.encoding", 2, 4, (), "not valid UTF-8 at byte 8", "save the file as UTF-8"),
    ("[" * 65, "yaml.too_deep", 1, 65, (), "nesting is too deep", "specs may nest at most 64 levels"),
]


@BOTH
@pytest.mark.parametrize("text, code, line, col, path, message, hint", LOADER_ERRORS,
                         ids=[f"{e[1]}-{i}" for i, e in enumerate(LOADER_ERRORS)])
def test_refusals_exactly(text, code, line, col, path, message, hint, use_libyaml):
    from archspec.source import LoaderLimits

    with pytest.raises(SourceError) as info:
        load_text(text, "t.yaml", LoaderLimits(use_libyaml=use_libyaml))
    err = info.value
    assert (err.code, err.location.file, err.location.line, err.location.col) == (code, "t.yaml", line, col)
    if code == "yaml.syntax" and not use_libyaml:  # the two parsers word it differently
        message = "YAML syntax: expected ',' or ']', but got '<stream end>'"
    assert (err.location.path, err.message, err.hint) == (path, message, hint)


@BOTH
def test_limits_are_inclusive(use_libyaml):
    from archspec.source import LoaderLimits

    limits = LoaderLimits(use_libyaml=use_libyaml)
    assert load_text("[" * 63 + "]" * 63, "t.yaml", limits).data is not None  # 63 levels inside the root
    assert load_text("a: " + "x" * 10_000, "t.yaml", limits).data == {"a": "x" * 10_000}
    small = LoaderLimits(use_libyaml=use_libyaml, max_depth=3, max_scalar=3, max_int_digits=2)
    assert load_text("a: [[b]]", "t.yaml", small).data == {"a": [["b"]]}
    with pytest.raises(SourceError, match="nesting is too deep") as info:
        load_text("a: [[[b]]]", "t.yaml", small)
    assert info.value.hint == "specs may nest at most 3 levels"
    assert load_text("abc: -12", "t.yaml", small).data == {"abc": -12}
    with pytest.raises(SourceError) as info:
        load_text("a: 123", "t.yaml", small)
    assert info.value.hint == "integers may have at most 2 digits"
    with pytest.raises(SourceError) as info:
        load_text("abcd: 1", "t.yaml", small)
    assert info.value.code == "yaml.scalar_too_long" and info.value.message == "scalar is 4 characters long"


def test_positions_fall_back_to_the_nearest_located_parent():
    located = load_text("a: 1\nb:\n  - {c: 2}\n  - x: [1, {d: 3}]\n", "t.yaml")
    assert located.values[("b", 1, "x", 1, "d")] == (4, 16)
    loc = located.loc(("b", 0, "c"))
    assert (loc.file, loc.line, loc.col, loc.path) == ("t.yaml", 3, 9, ("b", 0, "c"))
    key = located.loc(("b", 0, "c"), prefer_key=True)
    assert (key.line, key.col, key.path) == (3, 6, ("b", 0, "c"))
    # a path below a located node: the nearest parent, its key first (the key names what is wrong)
    loc = located.loc(("a", "nothing", "here"))
    assert (loc.line, loc.col, loc.path) == (1, 1, ("a", "nothing", "here"))
    loc = located.loc(("b", 1, "x", 1, "d", "e", "f", "g"))
    assert (loc.line, loc.col) == (4, 13)  # the key `d`, three levels up
    loc = located.loc(("b", 1, "x", 1, "zz"))
    assert (loc.line, loc.col) == (4, 12)  # the mapping `{d: 3}`, one level up
    loc = located.loc(("zz", "y"))
    assert (loc.file, loc.line, loc.col, loc.path) == ("t.yaml", 1, 1, ("zz", "y"))  # the document
    nowhere = load_text("a: 1", "t.yaml")
    nowhere.values.clear()
    loc = nowhere.loc(("q",))
    assert (loc.file, loc.line, loc.col, loc.path) == ("t.yaml", 1, 1, ("q",))


@BOTH
@pytest.mark.parametrize("raw, line, col", [
    (b"\na: \xff", 2, 4), (b"a: \xff\nb: 1\n", 1, 4), (b"a: 1\nb: 2\nc: \xff\n", 3, 4), (b"\n\xff", 2, 1),
])
def test_encoding_and_control_character_positions(raw, line, col, use_libyaml):
    from archspec.source import LoaderLimits

    limits = LoaderLimits(use_libyaml=use_libyaml)
    with pytest.raises(SourceError) as info:
        load_text(raw, "t.yaml", limits)
    assert (info.value.code, info.value.location.line, info.value.location.col) == ("yaml.encoding", line, col)
    control = raw.replace(b"\xff", b"\x01")
    with pytest.raises(SourceError) as info:
        load_text(control, "t.yaml", limits)
    assert (info.value.code, info.value.location.line, info.value.location.col) == \
        ("yaml.control_character", line, col)


@BOTH
def test_more_loader_edges(use_libyaml, tmp_path):
    from archspec.source import LoaderLimits, load_file

    limits = LoaderLimits(use_libyaml=use_libyaml)
    assert load_text("a: ! x\n", "t.yaml", limits).data == {"a": "x"}  # the non-specific tag is no tag
    number = "1." + "1" * 62  # 64 characters: the longest number literal
    assert load_text(f"a: {number}\n", "t.yaml", limits).data == {"a": float(number)}
    with pytest.raises(SourceError) as info:  # the cap reached at a collection
        load_text("a: [1]\n", "t.yaml", LoaderLimits(use_libyaml=use_libyaml, max_nodes=2))
    assert (info.value.code, info.value.message, info.value.location.line, info.value.location.col) == \
        ("yaml.too_many_nodes", "too many YAML nodes", 1, 4)
    with pytest.raises(SourceError) as info:
        load_text("a: [", limits=limits)
    assert info.value.location.file == "<spec>"  # the default file name
    located = load_text("\n\na: 1\n", "t.yaml", limits)  # the document starts on line 3
    loc = located.loc(("zz",))
    assert (loc.line, loc.col) == (3, 1)
    with pytest.raises(SourceError) as info:
        load_text("[" * 2000, "t.yaml", limits)  # past libyaml's own depth: still ours, still this file
    assert (info.value.code, info.value.location.file, info.value.location.col) == ("yaml.too_deep", "t.yaml", 65)
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 10)
    with pytest.raises(SourceError) as info:
        load_file(path, LoaderLimits(use_libyaml=use_libyaml, max_bytes=10))
    assert (info.value.location.file, info.value.message) == (str(path), "spec file is 50 bytes")
    assert info.value.hint == "at most 10 bytes are read"
    with pytest.raises(SourceError) as info:
        load_text("a: 1\n" * 10, "t.yaml", LoaderLimits(use_libyaml=use_libyaml, max_bytes=10))
    assert (info.value.location.file, info.value.message) == ("t.yaml", "file is 50 bytes")
