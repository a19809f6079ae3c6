from __future__ import annotations

from archspec.ops.registry import (
    Args,
    Bool,
    IntPair,
    NonNegPair,
    PosInt,
    Primitive,
    need_rank,
    pair,
    register,
    spatial_out,
)


class Conv2dArgs(Args):
    out: PosInt
    kernel: IntPair = 1
    stride: IntPair = 1
    padding: NonNegPair = 0
    dilation: IntPair = 1
    groups: PosInt = 1
    bias: Bool = True


@register
class Conv2d(Primitive):
    """2-D convolution (`nn.Conv2d`). Input channels come from the input shape."""

    example = ({"out": 8, "kernel": 3, "stride": 2, "padding": 1, "groups": 2}, [(4, 9, 9)])

    name = "conv2d"
    category = "conv"
    absorbs_norm = True
    Args = Conv2dArgs
    mutable_output = True

    def infer(self, args, shapes):
        shape = shapes[0]
        need_rank(shape, [3], "conv2d")
        if shape[0] % args.groups or args.out % args.groups:
            raise ValueError(f"groups={args.groups} must divide in channels {shape[0]} "
                             f"and out channels {args.out}")
        h, w = spatial_out(shape, args.kernel, args.stride, args.padding, args.dilation, "conv2d")
        return (args.out, h, w)

    def count_params(self, args, shapes):
        kh, kw = pair(args.kernel)
        return args.out * (shapes[0][0] // args.groups) * kh * kw + (args.out if args.bias else 0)

    def count_macs(self, args, shapes, out):
        kh, kw = pair(args.kernel)
        return out[0] * out[1] * out[2] * (shapes[0][0] // args.groups) * kh * kw

    def key_args(self, args):
        return {"k": args.kernel, "s": args.stride, "g": args.groups}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        return nn.Conv2d(shapes[0][0], args.out, pair(args.kernel), pair(args.stride),
                         pair(args.padding), pair(args.dilation), args.groups, args.bias)
