from __future__ import annotations

import pytest

from archspec.spec.expr import ExprError, evaluate, make_divisible, round_channels, split_channels


@pytest.mark.parametrize("text, scope, value", [
    ("out // reduction", {"out": 256, "reduction": 4}, 64),
    ("int(c * w)", {"c": 24, "w": 1.4}, 33),
    ("round_channels(24, 1.3)", {}, 32),
    ("split_channels(480, 3)", {}, [160, 160, 160]),
    ("split_channels(10, 3)", {}, [4, 3, 3]),
    ("make_divisible(32 * 0.75)", {}, 24),
    ("layers[1]", {"layers": [2, 3]}, 3),
    ("'relu' if onnx else 'relu6'", {"onnx": False}, "relu6"),
    ("s != 1 or a != b", {"s": 1, "a": 3, "b": 3}, False),
])
def test_allowed(text, scope, value):
    assert evaluate(text, scope) == value


@pytest.mark.parametrize("text", [
    "9**9**9", "__import__('os')", "x.real", "[1] * 10**6", "(lambda: 1)()", "open('f')",
    "[i for i in range(3)]", "1 +" * 200 + "1", "f'{x}'", "x[0:2]",
    "split_channels(8, 10**9)", "split_channels(8, 0)", "[[1] * 4096] * 4096 + [[1] * 4096] * 4096",
])
def test_refused(text):
    with pytest.raises(ExprError):
        evaluate(text, {"x": [1, 2, 3]})


def test_unknown_name_suggests():
    with pytest.raises(ExprError, match="did you mean 'planes'"):
        evaluate("plnes * 4", {"planes": 64})


def test_rounding_helpers_match_references():
    assert split_channels(480, 3) == [160, 160, 160]
    assert round_channels(200, 1.3) == 264 and round_channels(200, 1.0) == 200
    assert make_divisible(1280 * 0.5, 8) == 640


@pytest.mark.parametrize("text, scope", [
    ("x.imag", {"x": 3}),  # the attribute exists: refused because it is an attribute, not because it is missing
    ("x.real", {"x": 2.5}),
    ("x.numerator", {"x": 7}),
    ("x.upper", {"x": "relu"}),
    ("(1).bit_length()", {}),
    ("'a'.join", {}),
])
def test_attribute_access_is_refused_even_when_the_attribute_exists(text, scope):
    with pytest.raises(ExprError, match="is not allowed"):
        evaluate(text, scope)


def test_integer_results_are_bounded_at_64_bits():
    assert evaluate("2 ** 63", {}) == 2 ** 63  # 64 bits: the largest allowed
    assert evaluate("x * 2", {"x": 2 ** 62}) == 2 ** 63
    assert evaluate("-(2 ** 63)", {}) == -(2 ** 63)
    for text, scope in [("2 ** 64", {}), ("x * 2", {"x": 2 ** 63}), ("x * x", {"x": 2 ** 40}),
                        ("x + x", {"x": 2 ** 63}), ("x", {"x": 2 ** 64}), ("2 ** 65", {}), ("3 ** 41", {})]:
        with pytest.raises(ExprError, match="too large"):
            evaluate(text, scope)


# ---- exact values and messages: written to kill the mutants `mutmut` found surviving (docs/testing.md) ----
SCOPE = {"x": [1, 2, 3], "planes": 64, "d": {}}


@pytest.mark.parametrize("text, value", [
    ("True", True), ("False", False), ("None", None), ("not 0", True), ("not 3", False), ("+3", 3), ("-3", -3),
    ("0 or 5", 5), ("3 and 0", 0), ("1 and 2", 2), ("0 and 1", 0), ("0 or 0", 0), ("2 or 0", 2),
    ("1 < 2", True), ("1 < 2 < 3", True), ("1 < 3 < 2", False), ("3 > 2 > 1", True), ("2 in x", True),
    ("5 not in x", True), ("1 if True else 2", 1), ("1 if 0 else 2", 2), ("[1, 2]", [1, 2]), ("(1, 2)", [1, 2]),
    ("x[-3]", 1), ("x[-1]", 3), ("x[2]", 3), ("2 * [1]", [1, 1]), ("[1] * 2", [1, 1]), ("'ab' * 3", "ababab"),
    ("[0] * 4096", [0] * 4096), ("1 ** 64", 1), ("2 ** 63", 2 ** 63), ("7 % 3", 1), ("7 // 2", 3), ("7 / 2", 3.5),
    ("make_divisible(11)", 16), ("make_divisible(10, 9)", 9), ("make_divisible(3, 8, 1)", 9),
    ("make_divisible(32 * 0.75, divisor=16)", 32), ("make_divisible(value=24, divisor=16)", 32),
    ("round_channels(200, 2.0)", 400), ("round_channels(16, 1.5, 8, 32)", 32), ("round_channels(7.9)", 7),
    ("split_channels(5, 1)", [5]), ("split_channels(3, 3)", [1, 1, 1]), ("split_channels(0, 1)", [0]),
    ("max(x)", 3), ("min(4, 2)", 2), ("sum(x)", 6), ("len(x)", 3), ("abs(-2)", 2), ("ceil(1.2)", 2),
    ("floor(1.8)", 1), ("round(2.6)", 3), ("float(2)", 2.0), ("int(2.9)", 2),
])
def test_exact_values(text, value):
    got = evaluate(text, SCOPE)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, message", [
    ("roud(1.5)", "function 'roud' is not allowed; did you mean 'round'?"),
    ("x.y(1)", "function 'x.y' is not allowed"),
    ("plnes", "unknown name 'plnes'; did you mean 'planes'?"),
    ("zzz", "unknown name 'zzz'"),
    ("1 is 1", "comparison Is is not allowed"),
    ("1 < 'a'", "cannot compare: '<' not supported between instances of 'int' and 'str'"),
    ("int('x')", "int() cannot read 'x'"),
    ("1 + 'a'", "Add needs numbers"),
    ("1 / 0", "division by zero"),
    ("5[0]", "indexing needs a list and an integer"),
    ("x[True]", "indexing needs a list and an integer"),
    ("x[3]", "index 3 is out of range for a list of 3"),
    ("x[-4]", "index -4 is out of range for a list of 3"),
    ("b'x'", "only numbers, strings, booleans and None are allowed"),
    ("...", "only numbers, strings, booleans and None are allowed"),
    ("max(**d)", "** arguments are not allowed"),
    ("1 | 2", "operator BitOr is not allowed"),
    ("-'a'", "unary operator is not allowed here"),
    ("~1", "unary operator is not allowed here"),
    ("'a' ** 2", "** needs numbers"),
    ("2 ** 'a'", "** needs numbers"),
    ("2 ** 64", "integer result is too large"),
    ("4 ** 32", "integer result is too large"),
    ("3 ** 41", "power result is too large"),
    ("2 ** 65", "power result is too large"),
    ("[1] * 2.0", "a sequence can only be repeated an integer number of times"),
    ("[1, 2] * 3000", "sequence repetition is too large"),
    ("[0] * 4097", "sequence repetition is too large"),
    ("x + [0] * 4094", "sequence result is too long"),
    ("1e308 * 10", "result is not a finite number"),
    ("split_channels(1, 2)", "split_channels needs 1 to min(channels, 4096) groups, got 2"),
    ("split_channels(5, 0)", "split_channels needs 1 to min(channels, 4096) groups, got 0"),
    ("lambda: 1", "Lambda is not allowed in expressions"),
    ("1 +", "invalid expression: invalid syntax"),
])
def test_exact_messages(text, message):
    with pytest.raises(ExprError) as info:
        evaluate(text, SCOPE)
    assert str(info.value) == message


def test_size_limits_are_inclusive():
    from archspec.spec.expr import MAX_LENGTH, MAX_NODES

    text = "1 +" + " " * (MAX_LENGTH - 4) + "1"  # exactly MAX_LENGTH characters
    assert len(text) == MAX_LENGTH and evaluate(text, {}) == 2
    with pytest.raises(ExprError) as info:
        evaluate(text + " ", {})
    assert str(info.value) == f"expression is {MAX_LENGTH + 1} characters long (at most {MAX_LENGTH})"
    # a sum of k ones has 3k - 1 nodes (Expression, k - 1 BinOps with their Add, k Constants); a unary
    # minus adds two (UnaryOp, USub): `-1 + 1 + ... + 1` with 85 ones has exactly 256
    import ast

    exact = "-" + " + ".join(["1"] * 85)
    assert sum(1 for _ in ast.walk(ast.parse(exact, mode="eval"))) == MAX_NODES == 256
    assert evaluate(exact, {}) == 83
    with pytest.raises(ExprError) as info:
        evaluate(exact + " + 1", {})
    assert str(info.value) == f"expression has more than {MAX_NODES} parts"


def test_long_function_names_are_shown_whole_or_cut_at_40():
    name = "f" * 45
    with pytest.raises(ExprError) as info:
        evaluate(f"{name}(1)", {})
    assert str(info.value) == f"function {name!r} is not allowed"
    with pytest.raises(ExprError) as info:
        evaluate(f"{name}.g(1)", {})
    assert str(info.value) == f"function {name[:40]!r} is not allowed"


def test_names_in():
    from archspec.spec.expr import names_in

    assert names_in("a * b + c(d) if e else x[f]") == {"a", "b", "c", "d", "e", "x", "f"}
    assert names_in("1 + 2") == set()
