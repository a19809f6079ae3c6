"""Shared rules of the windowed pools (max and average): one base, two registered primitives."""

from __future__ import annotations

from typing import ClassVar

from archspec.ops.registry import Args, Bool, IntPair, NonNegPair, Primitive, need_rank, spatial_out


class PoolArgs(Args):
    kernel: IntPair
    stride: IntPair | None = None
    padding: NonNegPair = 0
    ceil_mode: Bool = False


def _torch_arg(value: int | list[int]) -> int | tuple[int, ...]:
    return value if isinstance(value, int) else tuple(value)


class WindowPool(Primitive):
    """Base of maxpool2d and avgpool2d; the stride defaults to the kernel size, as in torch."""

    category = "pool"
    Args = PoolArgs
    torch_class: ClassVar[str]

    @staticmethod
    def stride(args: PoolArgs) -> int | list[int]:
        return args.kernel if args.stride is None else args.stride

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], self.name)
        return (shapes[0][0], *spatial_out(shapes[0], args.kernel, self.stride(args), args.padding, 1, self.name))

    def key_args(self, args):
        return {"k": args.kernel, "s": self.stride(args)}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        cls = getattr(nn, self.torch_class)
        return cls(_torch_arg(args.kernel), _torch_arg(self.stride(args)), _torch_arg(args.padding),
                   ceil_mode=args.ceil_mode)
