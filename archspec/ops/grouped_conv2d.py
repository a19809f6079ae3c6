"""MixNet's GroupedConv2d: split channels unevenly, convolve each part, concatenate."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from archspec.ops.registry import Args, PosInt, Primitive, need_rank, register, spatial_out
from archspec.spec.expr import split_channels

Kernels = Annotated[list[PosInt], Field(min_length=1, max_length=16)]

class GroupedArgs(Args):
    out: PosInt
    kernel: Kernels
    stride: PosInt = 1
    padding: Annotated[int, Field(strict=True, ge=0, le=64)] = 0

@register
class GroupedConv2d(Primitive):
    """One conv per channel group, group i with `kernel[i]`; the first group takes the remainder.

    State dict keys: `grouped_conv.{i}.weight` (no bias), as in the MixNet reference.
    """

    example = ({"out": 10, "kernel": [1, 1, 1]}, [(8, 5, 5)])

    name = "grouped_conv2d"
    category = "conv"
    Args = GroupedArgs
    mutable_output = True

    def infer(self, args, shapes):
        shape = shapes[0]
        need_rank(shape, [3], "grouped_conv2d")
        groups = len(args.kernel)
        if shape[0] < groups or args.out < groups:
            raise ValueError(f"{groups} groups need at least {groups} in and out channels")
        sizes = {spatial_out(shape, k, args.stride, args.padding, 1, "grouped_conv2d") for k in args.kernel}
        if len(sizes) > 1:
            raise ValueError("the kernels give different output sizes; use padding that keeps them equal")
        return (args.out, *sizes.pop())

    def count_params(self, args, shapes):
        ins = split_channels(shapes[0][0], len(args.kernel))
        outs = split_channels(args.out, len(args.kernel))
        return sum(i * o * k * k for i, o, k in zip(ins, outs, args.kernel))

    def count_macs(self, args, shapes, out):
        return self.count_params(args, shapes) * out[1] * out[2]

    def key_args(self, args):
        return {"k": args.kernel, "s": args.stride}

    def build(self, args, shapes, inplace=False):
        from archspec.ops._torch_modules import SplitConv

        ins = split_channels(shapes[0][0], len(args.kernel))
        outs = split_channels(args.out, len(args.kernel))
        convs = [(i, o, k, args.stride, args.padding, 1) for i, o, k in zip(ins, outs, args.kernel)]
        return SplitConv("GroupedConv2d", "grouped_conv", ins, convs)

    def fused(self, module):
        from archspec.ops._torch_modules import grouped_conv

        convs = list(getattr(module, module.attr))
        same = len({(c.in_channels, c.out_channels, c.kernel_size) for c in convs}) == 1
        return (grouped_conv(convs), "conv2d") if same else None

    def source(self, module):
        return module.source()

    def source_helpers(self):
        from archspec.ops._torch_modules import SplitConv

        return [SplitConv]
