from __future__ import annotations

from archspec.ops._pool import PoolArgs
from archspec.ops.registry import Primitive, need_rank, pair, register, spatial_out


@register
class AvgPool2d(Primitive):
    """`nn.AvgPool2d`; the stride defaults to the kernel size."""

    example = ({"kernel": 2}, [(3, 8, 8)])

    name = "avgpool2d"
    category = "pool"
    Args = PoolArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], "avgpool2d")
        stride = args.kernel if args.stride is None else args.stride
        return (shapes[0][0], *spatial_out(shapes[0], args.kernel, stride, args.padding, 1, "avgpool2d"))

    def key_args(self, args):
        return {"k": args.kernel, "s": args.stride or args.kernel}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        stride = args.kernel if args.stride is None else args.stride
        return nn.AvgPool2d(args.kernel if isinstance(args.kernel, int) else pair(args.kernel),
                            stride if isinstance(stride, int) else pair(stride),
                            args.padding if isinstance(args.padding, int) else pair(args.padding),
                            ceil_mode=args.ceil_mode)
