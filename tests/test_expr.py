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
