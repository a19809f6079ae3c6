from __future__ import annotations

from archspec.ops._pool import PoolArgs
from archspec.ops.registry import Primitive, need_rank, pair, register, spatial_out


@register
class MaxPool2d(Primitive):
    """`nn.MaxPool2d`; the stride defaults to the kernel size."""

    example = ({"kernel": 3, "stride": 2, "padding": 1}, [(3, 9, 9)])

    name = "maxpool2d"
    category = "pool"
    Args = PoolArgs

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], "maxpool2d")
        stride = args.kernel if args.stride is None else args.stride
        return (shapes[0][0], *spatial_out(shapes[0], args.kernel, stride, args.padding, 1, "maxpool2d"))

    def key_args(self, args):
        return {"k": args.kernel, "s": args.stride or args.kernel}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        stride = args.kernel if args.stride is None else args.stride
        return nn.MaxPool2d(pair(args.kernel) if isinstance(args.kernel, list) else args.kernel,
                            stride if isinstance(stride, int) else pair(stride),
                            args.padding if isinstance(args.padding, int) else pair(args.padding),
                            ceil_mode=args.ceil_mode)
