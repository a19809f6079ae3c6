"""A small, safe evaluator for arithmetic over params.

Expressions are parsed with `ast` and walked by hand. Only literals, names from the scope,
arithmetic, comparisons, boolean logic, conditionals, list/tuple displays, indexing and calls
to the whitelisted functions below are allowed. There is no attribute access, no import,
no comprehension and no `eval`. Sizes are bounded so that `9**9**9` fails fast.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

MAX_LENGTH = 512
MAX_NODES = 256
MAX_INT_BITS = 64
MAX_SEQ = 4096


class ExprError(ValueError):
    """Raised with a user-facing message; the caller adds the location."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's `_make_divisible`."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def round_channels(channels: float, multiplier: float = 1.0, divisor: int = 8,
                   min_value: int | None = None) -> int:
    """MixNet's `_RoundChannels(c * multiplier)`: identity when the multiplier is 1."""
    if multiplier == 1.0:
        return int(channels)
    return make_divisible(channels * multiplier, divisor, min_value)


def split_channels(channels: int, groups: int) -> list[int]:
    """MixNet's `_SplitChannels`: equal parts, the first takes the remainder."""
    if not isinstance(groups, int) or not 1 <= groups <= min(MAX_SEQ, max(channels, 1)):
        raise ExprError(f"split_channels needs 1 to min(channels, {MAX_SEQ}) groups, got {groups!r:.20}")
    parts = [channels // groups] * groups
    parts[0] += channels - sum(parts)
    return parts



FUNCTIONS: dict[str, Callable] = {
    "int": int,
    "float": float,
    "round": round,
    "min": min,
    "max": max,
    "abs": abs,
    "len": len,
    "sum": sum,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": make_divisible,
    "round_channels": round_channels,
    "split_channels": split_channels,
}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def parse(text: str) -> ast.Expression:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long (at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts")
    return tree


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `text` with the names in `scope`. Raises ExprError on anything not allowed."""
    return _Evaluator(scope).visit(parse(text).body)


def names_in(text: str) -> set[str]:
    return {n.id for n in ast.walk(parse(text)) if isinstance(n, ast.Name)}


def _bound(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExprError("integer result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("result is not a finite number")
    if isinstance(value, (list, tuple, str)) and len(value) > MAX_SEQ:
        raise ExprError("sequence result is too long")
    return value


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any]):
        self.scope = scope

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"{type(node).__name__} is not allowed in expressions")
        return _bound(method(node))

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        raise ExprError("only numbers, strings, booleans and None are allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        from archspec.errors import did_you_mean

        hint = did_you_mean(node.id, list(self.scope) + list(FUNCTIONS))
        raise ExprError(f"unknown name {node.id!r}" + (f"; {hint}" if hint else ""))

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node.op, ast.Pow):
            self._check_pow(left, right)
        if isinstance(node.op, ast.Mult) and isinstance(left, (list, tuple, str)) or \
                isinstance(node.op, ast.Mult) and isinstance(right, (list, tuple, str)):
            count = right if isinstance(left, (list, tuple, str)) else left
            seq = left if isinstance(left, (list, tuple, str)) else right
            if not isinstance(count, int) or count * len(seq) > MAX_SEQ:
                raise ExprError("sequence repetition is too large")
        try:
            return op(left, right)
        except ZeroDivisionError:
            raise ExprError("division by zero") from None
        except (TypeError, OverflowError) as exc:
            raise ExprError(f"cannot apply {type(node.op).__name__}: {exc}") from None

    @staticmethod
    def _check_pow(base: Any, exp: Any) -> None:
        if not isinstance(base, (int, float)) or not isinstance(exp, (int, float)):
            raise ExprError("** needs numbers")
        if abs(exp) > MAX_INT_BITS or (abs(base) > 1 and abs(exp) * math.log2(abs(base)) > MAX_INT_BITS):
            raise ExprError("power result is too large")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
        raise ExprError("unary operator is not allowed here")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = is_and
        for item in node.values:
            value = self.visit(item)
            if bool(value) != is_and:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.visit(comp)
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise ExprError(f"comparison {type(op).__name__} is not allowed")
            try:
                if not fn(left, right):
                    return False
            except TypeError as exc:
                raise ExprError(f"cannot compare: {exc}") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(e) for e in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return [self.visit(e) for e in node.elts]

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        seq = self.visit(node.value)
        index = self.visit(node.slice)
        if not isinstance(seq, (list, tuple, str)) or not isinstance(index, int) or isinstance(index, bool):
            raise ExprError("indexing needs a list and an integer")
        if not -len(seq) <= index < len(seq):
            raise ExprError(f"index {index} is out of range for a list of {len(seq)}")
        return seq[index]

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)[:40]
            from archspec.errors import did_you_mean

            hint = did_you_mean(name, FUNCTIONS)
            raise ExprError(f"function {name!r} is not allowed" + (f"; {hint}" if hint else ""))
        args = [self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise ExprError("** arguments are not allowed")
            kwargs[kw.arg] = self.visit(kw.value)
        try:
            return FUNCTIONS[node.func.id](*args, **kwargs)
        except ExprError:
            raise
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
            raise ExprError(f"{node.func.id}(): {exc}") from None
