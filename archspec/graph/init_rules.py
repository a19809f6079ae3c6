"""Static checks of `init:` rules: scheme syntax, arity, argument types and ranges, and that each rule
matches some module (no torch). Lowering resolves each rule once into the IR (`ResolvedInit`: the modules it
matches and the bound arguments), so the torch side never parses a scheme and never sees one that validate did
not check."""

from __future__ import annotations

import ast
from typing import Any

from archspec.errors import SpecError, did_you_mean
from archspec.graph.ir import ResolvedInit, TypedGraph
from archspec.ops import REGISTRY
from archspec.source import Located
from archspec.spec import expr

NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
MODES = ("fan_in", "fan_out")
_KAIMING = (("a", 0.0, "number"), ("mode", "fan_in", MODES), ("nonlinearity", "leaky_relu", NONLINEARITIES))
# scheme -> its parameters in order: (name, default or REQUIRED, "number" | "std" | tuple of allowed strings)
REQUIRED = object()
SIGNATURES: dict[str, tuple] = {
    "zeros": (),
    "ones": (),
    "constant": (("value", REQUIRED, "number"),),
    "normal": (("mean", 0.0, "number"), ("std", 1.0, "std")),
    "uniform": (("a", 0.0, "number"), ("b", 1.0, "number")),
    "kaiming_normal": _KAIMING,
    "kaiming_uniform": _KAIMING,
    "xavier_uniform": (("gain", 1.0, "number"),),
    "xavier_normal": (("gain", 1.0, "number"),),
    "trunc_normal": (("mean", 0.0, "number"), ("std", 1.0, "positive")),
}
SCHEME_NAMES = tuple(SIGNATURES)
FAN_SCHEMES = ("kaiming_normal", "kaiming_uniform", "xavier_uniform", "xavier_normal")  # need a tensor of 2+ dims


class InitError(ValueError):
    """A scheme that cannot be applied; the caller adds the location."""


def scheme_call(text: str) -> ast.Call:
    tree = expr.parse(text).body
    if isinstance(tree, ast.Name):
        tree = ast.Call(func=tree, args=[], keywords=[])
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name) or tree.func.id not in SCHEME_NAMES:
        hint = did_you_mean(text.split("(")[0].strip(), SCHEME_NAMES)
        raise InitError(f"unknown init scheme {text[:60]!r}; " + (hint or f"known: {', '.join(SCHEME_NAMES)}"))
    return tree


def bind(text: str) -> tuple[str, dict[str, Any]]:
    """Parse a scheme and bind its arguments by name, checking arity, types and ranges."""
    call = scheme_call(text)
    name = call.func.id
    signature = SIGNATURES[name]
    names = [p[0] for p in signature]
    if len(call.args) > len(signature):
        raise InitError(f"{name}() takes at most {len(signature)} argument(s), got {len(call.args)}")
    bound: dict[str, Any] = {}
    for pname, arg in zip(names, call.args):
        bound[pname] = expr.evaluate(ast.unparse(arg), {})
    for kw in call.keywords:
        if kw.arg is None or kw.arg not in names:
            hint = did_you_mean(kw.arg or "", names)
            raise InitError(f"{name}() has no argument {kw.arg!r}" + (f"; {hint}" if hint else
                            f"; its arguments: {', '.join(names) or 'none'}"))
        if kw.arg in bound:
            raise InitError(f"{name}() got argument {kw.arg!r} twice")
        bound[kw.arg] = expr.evaluate(ast.unparse(kw.value), {})
    for pname, default, kind in signature:
        if pname not in bound:
            if default is REQUIRED:
                raise InitError(f"{name}() needs its argument {pname!r}")
            bound[pname] = default
        value = bound[pname]
        if isinstance(kind, tuple):
            if value not in kind or not isinstance(value, str):
                raise InitError(f"{name}(): {pname} must be one of {', '.join(map(repr, kind))}, got {value!r:.40}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InitError(f"{name}(): {pname} must be a number, got {value!r:.40}")
        if kind == "std" and value < 0:
            raise InitError(f"{name}(): std must not be negative, got {value!r}")
        if kind == "positive" and value <= 0:
            raise InitError(f"{name}(): {pname} must be positive, got {value!r}")
        bound[pname] = float(value)
    if name == "uniform" and bound["a"] > bound["b"]:
        raise InitError(f"uniform(): a ({bound['a']}) must not be above b ({bound['b']})")
    return name, bound


def resolve_init_rules(tg: TypedGraph, rules: list, located: Located) -> list[ResolvedInit]:
    """Check the spec's `init:` rules against the module table and bind their schemes, once: the backend
    applies the result without parsing anything again."""
    leaves = {path: d for path, d in tg.modules.items() if d.kind == "leaf"}
    resolved = []
    for i, rule in enumerate(rules):
        matched = [p for p, d in leaves.items() if d.type in rule.blocks
                   and (rule.under is None or p == rule.under or p.startswith(rule.under + "."))]
        schemes = []
        for key in ("weight", "bias"):
            text = getattr(rule, key)
            if text is None:
                continue
            try:
                name, kwargs = bind(text)
            except (InitError, expr.ExprError) as exc:
                raise SpecError(str(exc), located.loc(("init", i, key)), code="schema.init") from None
            if name in FAN_SCHEMES:
                flat = [p for p in matched if key == "bias" or REGISTRY[leaves[p].type].vector_weight]
                if flat:
                    raise SpecError(f"{name} needs a tensor of two or more dimensions, but the {key} of "
                                    f"{flat[0]} ({leaves[flat[0]].type}) is a vector", located.loc(("init", i, key)),
                                    "use normal, uniform, constant, zeros or ones for vectors", code="schema.init")
            schemes.append((key, name, tuple(kwargs.items())))
        if not matched:
            hint = did_you_mean(rule.under or "", {p.rsplit(".", 1)[0] for p in leaves}) if rule.under else ""
            raise SpecError("this init rule matches no module", located.loc(("init", i)),
                            hint or "check `blocks` (primitive names) and `under` (a module path)",
                            code="schema.init_unmatched")
        resolved.append(ResolvedInit(tuple(matched), tuple(schemes)))
    return resolved
