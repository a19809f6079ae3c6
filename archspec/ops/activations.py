"""Element-wise activations. One family, one file: they differ only in the torch class they make.

A named activation (or a seq item) is a module, as `self.relu = nn.ReLU(inplace=True)`; an unnamed one
outside a seq is a function call in the forward, as torchreid's `F.relu(out)`, and makes no module."""

from __future__ import annotations

from typing import Literal

from archspec.ops.registry import Args, Primitive, register

# name -> (torch.nn class name, accepts inplace, torch.nn.functional function)
KINDS: dict[str, tuple[str, bool, str]] = {
    "relu": ("ReLU", True, "relu"),
    "relu6": ("ReLU6", True, "relu6"),
    "sigmoid": ("Sigmoid", False, "sigmoid"),
    "swish": ("SiLU", True, "silu"),
    "hardswish": ("Hardswish", True, "hardswish"),
    "hardsigmoid": ("Hardsigmoid", True, "hardsigmoid"),
    "gelu": ("GELU", False, "gelu"),
    "tanh": ("Tanh", False, "tanh"),
}


def _make(kind: str, inplace: bool):
    from torch import nn

    cls_name, can_inplace, _ = KINDS[kind]
    cls = getattr(nn, cls_name)
    return cls(inplace=True) if inplace and can_inplace else cls()


def _call(graph, kind: str, x, inplace: bool):
    import torch

    _, can_inplace, function = KINDS[kind]
    if not can_inplace:  # torch.sigmoid and torch.tanh: F.sigmoid and F.tanh are deprecated aliases
        target = getattr(torch, function) if hasattr(torch, function) else getattr(torch.nn.functional, function)
        return graph.call_function(target, (x,))
    return graph.call_function(getattr(torch.nn.functional, function), (x,), {"inplace": inplace})


class _Activation(Primitive):
    category = "activation"
    kind: str

    def build(self, args, shapes, inplace=False):
        return _make(self.kind, inplace)

    def emit(self, graph, args, inputs, inplace=False):
        return _call(graph, self.kind, inputs[0], inplace)


for _kind, (_cls, _inplace, _) in KINDS.items():
    register(type(f"Act_{_kind}", (_Activation,), {
        "name": _kind, "kind": _kind, "supports_inplace": _inplace, "example": ({}, [(3, 4, 4)]),
        "__doc__": f"`nn.{_cls}` activation.",
    }))


class ActArgs(Args):
    kind: Literal[tuple(KINDS)] = "relu"  # type: ignore[valid-type]


@register
class Act(Primitive):
    """An activation chosen by a param, e.g. `kind: act` with `act: relu6`."""

    example = ({"kind": "relu6"}, [(3, 4)])

    name = "act"
    category = "activation"
    Args = ActArgs
    supports_inplace = True

    def key_args(self, args):
        return {"kind": args.kind}

    def build(self, args, shapes, inplace=False):
        return _make(args.kind, inplace)

    def emit(self, graph, args, inputs, inplace=False):
        return _call(graph, args.kind, inputs[0], inplace)
