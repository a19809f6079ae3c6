"""Initialisation rules declared in a spec's `init:` section, applied after the module is built.

A scheme is a call such as `kaiming_normal(mode='fan_out')` or `normal(0.0, 0.001)`. Lowering parses it with
the safe expression parser, checks and binds its arguments and stores the result in the IR (`ResolvedInit`);
this module maps it onto `torch.nn.init`. Nothing is parsed or executed here.
"""

from __future__ import annotations

import torch
from torch import nn

from archspec.graph.init_rules import SCHEME_NAMES
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
    """Apply the rules lowering resolved, in spec order: per rule, per module, weight then bias (the order
    fixes which random numbers each tensor draws, so one seed gives one set of weights)."""
    with torch.no_grad():
        for rule in tg.init:
            for path in rule.paths:
                module = model.get_submodule(path)
                for key, scheme, kwargs in rule.schemes:
                    tensor = getattr(module, key, None)
                    if isinstance(tensor, torch.Tensor):
                        SCHEMES[scheme](tensor, **dict(kwargs))
