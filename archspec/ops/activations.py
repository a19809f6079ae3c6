"""Element-wise activations. One family, one file: they differ only in the torch class they make."""

from __future__ import annotations

from typing import Literal

from archspec.ops.registry import Args, Primitive, register

# name -> (torch.nn class name, accepts inplace)
KINDS: dict[str, tuple[str, bool]] = {
    "relu": ("ReLU", True),
    "relu6": ("ReLU6", True),
    "sigmoid": ("Sigmoid", False),
    "swish": ("SiLU", True),
    "hardswish": ("Hardswish", True),
    "hardsigmoid": ("Hardsigmoid", True),
    "gelu": ("GELU", False),
    "tanh": ("Tanh", False),
}


def _make(kind: str, inplace: bool):
    from torch import nn

    cls_name, can_inplace = KINDS[kind]
    cls = getattr(nn, cls_name)
    return cls(inplace=True) if inplace and can_inplace else cls()


class _Activation(Primitive):
    category = "activation"
    kind: str

    def build(self, args, shapes, inplace=False):
        return _make(self.kind, inplace)


for _kind, (_cls, _inplace) in KINDS.items():
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
