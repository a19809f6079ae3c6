"""A small, safe evaluator for arithmetic over params.

Expressions are parsed with `ast` and walked by hand. Only literals, names from the scope,
arithmetic, comparisons, boolean logic, conditionals, list/tuple displays, indexing and calls
to the whitelisted functions below are allowed. There is no attribute access, no import,
no comprehension and no `eval`. Sizes are bounded so that `9**9**9` fails fast.
"""

from __future__ import annotations

import ast
import functools
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



def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"{what} needs a number, got {type(value).__name__}")
    return value


def _to_int(value: Any = 0) -> int:
    if isinstance(value, str):
        if len(value) > 32:
            raise ExprError("int() of a string longer than 32 characters")
        try:
            return int(value, 10)
        except ValueError:
            raise ExprError(f"int() cannot read {value[:32]!r}") from None
    if isinstance(value, float) and abs(value) >= 2.0 ** MAX_INT_BITS:
        raise ExprError("integer result is too large")
    return int(_number(value, "int()"))


def _to_float(value: Any = 0.0) -> float:
    if isinstance(value, str):
        if len(value) > 32:
            raise ExprError("float() of a string longer than 32 characters")
        try:
            return float(value)
        except ValueError:
            raise ExprError(f"float() cannot read {value[:32]!r}") from None
    return float(_number(value, "float()"))


def _round(value: Any, ndigits: Any = None) -> Any:
    _number(value, "round()")
    if ndigits is None:
        if isinstance(value, float) and abs(value) >= 2.0 ** MAX_INT_BITS:
            raise ExprError("integer result is too large")
        return round(value)
    if isinstance(ndigits, bool) or not isinstance(ndigits, int) or not -40 <= ndigits <= 40:
        raise ExprError("round()'s digits must be an integer from -40 to 40")
    return round(value, ndigits)


def _sum(items: Any, start: Any = 0) -> Any:
    if not isinstance(items, list):
        raise ExprError("sum() needs a list")
    total = _number(start, "sum()'s start")
    for item in items:
        total = _bound(total + _number(item, "sum()"))
    return total


def _extreme(fn: Callable) -> Callable:
    def run(*args: Any) -> Any:
        items = args[0] if len(args) == 1 else list(args)
        if not isinstance(items, list) or not items:
            raise ExprError(f"{fn.__name__}() needs a non-empty list or several values")
        return fn(items)
    run.__name__ = fn.__name__
    return run


def _rounding(fn: Callable) -> Callable:
    def run(value: Any) -> int:
        if isinstance(_number(value, f"{fn.__name__}()"), float) and abs(value) >= 2.0 ** MAX_INT_BITS:
            raise ExprError("integer result is too large")
        return fn(value)
    return run


def _len(value: Any) -> int:
    if not isinstance(value, (list, str)):
        raise ExprError("len() needs a list or a string")
    return len(value)


def _abs(value: Any) -> Any:
    return abs(_number(value, "abs()"))


def _numbers(fn: Callable) -> Callable:
    def run(*args: Any, **kwargs: Any) -> Any:
        for i, arg in enumerate([*args, *kwargs.values()]):
            if i < 2 or arg is not None:
                _number(arg, f"{fn.__name__}()")
        return fn(*args, **kwargs)
    return run


FUNCTIONS: dict[str, Callable] = {
    "int": _to_int,
    "float": _to_float,
    "round": _round,
    "min": _extreme(min),
    "max": _extreme(max),
    "abs": _abs,
    "len": _len,
    "sum": _sum,
    "ceil": _rounding(math.ceil),
    "floor": _rounding(math.floor),
    "make_divisible": _numbers(make_divisible),
    "round_channels": _numbers(round_channels),
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
    if not isinstance(text, str):
        raise ExprError("an expression is a string")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long (at most {MAX_LENGTH})")
    return _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """Parsed trees are cached (they are never changed): a large spec repeats the same few expressions."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte
        raise ExprError(f"invalid expression: {getattr(exc, 'msg', 'unreadable')}") from None
    except (MemoryError, RecursionError):
        raise ExprError("expression nests too deeply") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts")
    return tree


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `text` with the names in `scope`. Raises ExprError on anything not allowed.

    Every operation is checked before it runs, so that no expression can take more than a few
    milliseconds or more than a few MB; anything that still fails inside Python becomes an ExprError.
    """
    tree = parse(text)
    return _visit(tree, scope)


_MISSING = ("missing",)
_MEMO: dict = {}
MEMO_SIZE = 65_536


def evaluate_counted(text: str, scope: Mapping[str, Any]) -> tuple[Any, int]:
    """`evaluate`, memoised on the text and the values of the names it reads (evaluation is pure), and the
    work it cost: the number of syntax nodes walked, 0 when the result was remembered. A spec that repeats
    one block 4,096 times evaluates each of its expressions once per distinct set of values."""
    tree = parse(text)
    names, cost = _shape(text)
    try:
        key = (text, tuple(_freeze(scope[n]) if n in scope else _MISSING for n in names))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _MEMO:
        return _copy(_MEMO[key]), 0
    value = _visit(tree, scope)
    if key is not None and (not isinstance(value, list) or size(value, 64) <= 64):
        if len(_MEMO) >= MEMO_SIZE:
            _MEMO.clear()
        _MEMO[key] = _copy(value)
    return value, cost


@functools.lru_cache(maxsize=4096)
def _shape(text: str) -> tuple[tuple[str, ...], int]:
    tree = parse(text)
    return tuple(sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})), sum(1 for _ in ast.walk(tree))


def _freeze(value: Any) -> Any:
    """A hashable key that tells apart what == does not: True from 1, 1 from 1.0, -0.0 from 0.0."""
    if isinstance(value, float):
        return ("f", value, math.copysign(1.0, value))
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)) and len(value) <= 64:  # the memo stays small: long lists are not kept
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    raise TypeError("not memoisable")


def _copy(value: Any) -> Any:
    return [_copy(v) for v in value] if isinstance(value, list) else value


def names_in(text: str) -> set[str]:
    return {n.id for n in ast.walk(parse(text)) if isinstance(n, ast.Name)}


def size(value: Any, limit: int = MAX_SEQ) -> int:
    """Items in a value, counting nested lists and string characters; stops counting past `limit`."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple)):
        return 1
    total = len(value)
    for item in value:
        if total > limit:
            break
        if isinstance(item, (list, tuple, str)):
            total += size(item, limit - total)
    return total


def _bound(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ExprError("integer result is too large")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError("result is not a finite number")
        return value
    if isinstance(value, (list, tuple, str)):
        if size(value) > MAX_SEQ:
            raise ExprError(f"sequence result is too long (at most {MAX_SEQ} items, nested items counted)")
        return value
    raise ExprError(f"a {type(value).__name__} result is not allowed (numbers, strings, booleans and lists only)")


_SEQ = (list, tuple, str)


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
        self._check_binop(node.op, left, right)
        try:
            return op(left, right)
        except ZeroDivisionError:
            raise ExprError("division by zero") from None
        except (TypeError, OverflowError, ValueError) as exc:
            raise ExprError(f"cannot apply {type(node.op).__name__}: {str(exc)[:80]}") from None

    @staticmethod
    def _check_binop(op: ast.operator, left: Any, right: Any) -> None:
        """Refuse an operation before it runs when its result would be too large or not a plain value."""
        seq_left, seq_right = isinstance(left, _SEQ), isinstance(right, _SEQ)
        if isinstance(op, ast.Pow):
            _Evaluator._check_pow(left, right)
        elif isinstance(op, ast.Mult) and (seq_left or seq_right):
            count, seq = (right, left) if seq_left else (left, right)
            if isinstance(count, bool) or not isinstance(count, int):
                raise ExprError("a sequence can only be repeated an integer number of times")
            if max(count, 0) * size(seq) > MAX_SEQ:
                raise ExprError("sequence repetition is too large")
        elif isinstance(op, ast.Add) and seq_left and seq_right:
            if size(left) + size(right) > MAX_SEQ:
                raise ExprError("sequence result is too long")
        elif isinstance(op, ast.Mod) and (seq_left or seq_right):
            raise ExprError("% formatting of strings is not allowed")
        elif seq_left or seq_right:
            if not (isinstance(op, ast.Add) and seq_left and seq_right):
                raise ExprError(f"{type(op).__name__} needs numbers")

    @staticmethod
    def _check_pow(base: Any, exp: Any) -> None:
        if isinstance(base, bool) or isinstance(exp, bool) or \
                not isinstance(base, (int, float)) or not isinstance(exp, (int, float)):
            raise ExprError("** needs numbers")
        if base < 0 and isinstance(exp, float) and not exp.is_integer():
            raise ExprError("a negative number to a fractional power is not a real number")
        if base == 0 and exp < 0:
            raise ExprError("division by zero")
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


def _visit(tree, scope: dict) -> Any:
    """Evaluate a parsed expression; every Python error it raises becomes an ExprError."""
    try:
        return _Evaluator(scope).visit(tree.body)
    except ExprError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise ExprError(f"cannot evaluate: {type(exc).__name__}: {str(exc)[:80]}") from None
    except (MemoryError, RecursionError):
        raise ExprError("expression needs too much memory or nests too deeply") from None
