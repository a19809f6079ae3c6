"""Initialisation rules declared in a spec's `init:` section, applied after the module is built.

A scheme is a call such as `kaiming_normal(mode='fan_out')` or `normal(0.0, 0.001)`, parsed with the
safe expression parser (and checked at lowering) and mapped onto `torch.nn.init`; nothing is executed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archspec.graph.init_rules import SCHEME_NAMES, bind
from archspec.graph.ir import TypedGraph

SCHEMES = {  # called with the arguments that init_rules.bind checked and named
    "zeros": lambda t: nn.init.zeros_(t),
    "ones": lambda t: nn.init.ones_(t),
    "constant": lambda t, value: nn.init.constant_(t, value),
    "normal": lambda t, mean, std: nn.init.normal_(t, mean, std),
    "uniform": lambda t, a, b: nn.init.uniform_(t, a, b),
    "kaiming_normal": lambda t, a, mode, nonlinearity:
        nn.init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity),
    "kaiming_uniform": lambda t, a, mode, nonlinearity:
        nn.init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity),
    "xavier_uniform": lambda t, gain: nn.init.xavier_uniform_(t, gain),
    "xavier_normal": lambda t, gain: nn.init.xavier_normal_(t, gain),
    "trunc_normal": lambda t, mean, std: nn.init.trunc_normal_(t, mean, std),
}


if set(SCHEMES) != set(SCHEME_NAMES):  # the static check and the torch side must know the same schemes
    raise ImportError("archspec.backends.init and archspec.graph.init_rules disagree on init schemes")


def apply_rules(model: nn.Module, tg: TypedGraph) -> None:
    for rule in tg.init:
        for path, decl in tg.modules.items():
            if decl.kind != "leaf" or decl.type not in rule.blocks or not _under(path, rule.under):
                continue
            module = model.get_submodule(path)
            for key in ("weight", "bias"):
                tensor = getattr(module, key, None)
                text = getattr(rule, key)
                if text is not None and isinstance(tensor, torch.Tensor):
                    _apply(tensor, text)


def _under(path: str, prefix: str | None) -> bool:
    return prefix is None or path == prefix or path.startswith(prefix + ".")


def _apply(tensor: torch.Tensor, text: str) -> Any:
    name, kwargs = bind(text)  # the same binding and checks as at lowering time
    with torch.no_grad():
        return SCHEMES[name](tensor, **kwargs)
