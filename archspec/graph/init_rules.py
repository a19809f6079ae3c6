"""Static checks of `init:` rules: scheme syntax and that each rule matches some module (no torch)."""

from __future__ import annotations

import ast

from archspec.errors import SpecError, did_you_mean
from archspec.graph.ir import TypedGraph
from archspec.source import Located
from archspec.spec import expr

SCHEME_NAMES = ("zeros", "ones", "constant", "normal", "uniform", "kaiming_normal", "kaiming_uniform",
                "xavier_uniform", "xavier_normal", "trunc_normal")


def scheme_call(text: str) -> ast.Call:
    tree = expr.parse(text).body
    if isinstance(tree, ast.Name):
        tree = ast.Call(func=tree, args=[], keywords=[])
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name) or tree.func.id not in SCHEME_NAMES:
        raise ValueError(f"unknown init scheme {text!r}; known: {', '.join(SCHEME_NAMES)}")
    return tree


def check_init_rules(tg: TypedGraph, located: Located) -> None:
    leaves = {path: d for path, d in tg.modules.items() if d.kind == "leaf"}
    for i, rule in enumerate(tg.init):
        for key in ("weight", "bias"):
            text = getattr(rule, key)
            if text is None:
                continue
            try:
                call = scheme_call(text)
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    expr.evaluate(ast.unparse(arg), {})
            except (ValueError, expr.ExprError) as exc:
                raise SpecError(str(exc), located.loc(("init", i, key)), code="schema.init") from None
        matched = [p for p, d in leaves.items() if d.type in rule.blocks
                   and (rule.under is None or p == rule.under or p.startswith(rule.under + "."))]
        if not matched:
            hint = did_you_mean(rule.under or "", {p.rsplit(".", 1)[0] for p in leaves}) if rule.under else ""
            raise SpecError("this init rule matches no module", located.loc(("init", i)),
                            hint or "check `blocks` (primitive names) and `under` (a module path)",
                            code="schema.init_unmatched")
