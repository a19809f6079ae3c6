"""Shared rules of the windowed pools (max and average): one base, two registered primitives."""

from __future__ import annotations

from typing import ClassVar

from archspec.ops.registry import Args, Bool, IntPair, NonNegPair, Primitive, need_rank, pair, spatial_out


class PoolArgs(Args):
    kernel: IntPair
    stride: IntPair | None = None
    padding: NonNegPair = 0
    ceil_mode: Bool = False


def ceil_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output size with `ceil_mode`: torch rounds the window count up, then drops a last window that would
    start in the right padding (torch's `pooling_output_shape`)."""
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


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
        shape = shapes[0]
        need_rank(shape, [3], self.name)
        kernel, stride, padding = pair(args.kernel), pair(self.stride(args)), pair(args.padding)
        if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:  # torch refuses it when run
            raise ValueError(f"{self.name} padding {args.padding} is more than half the kernel {args.kernel}")
        if not args.ceil_mode:
            return (shape[0], *spatial_out(shape, kernel, stride, padding, 1, self.name))
        h, w = (ceil_out(size, k, s, p) for size, k, s, p in zip(shape[1:], kernel, stride, padding))
        if h < 1 or w < 1:
            raise ValueError(f"{self.name} collapses {shape[1]}×{shape[2]} to {h}×{w}")
        return (shape[0], h, w)

    def key_args(self, args):
        return {"k": args.kernel, "s": self.stride(args)}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        cls = getattr(nn, self.torch_class)
        return cls(_torch_arg(args.kernel), _torch_arg(self.stride(args)), _torch_arg(args.padding),
                   ceil_mode=args.ceil_mode)
