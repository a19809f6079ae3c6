"""MixNet's MDConv: a depthwise conv whose channel groups use different kernel sizes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from archspec.ops.registry import Args, PosInt, Primitive, need_rank, register, spatial_out
from archspec.spec.expr import split_channels


class MixedArgs(Args):
    kernel: Annotated[list[PosInt], Field(min_length=1, max_length=16)]
    stride: PosInt = 1


@register
class MixedConv2d(Primitive):
    """Depthwise conv, group i with `kernel[i]` and padding `kernel[i] // 2`; uneven split as MixNet.

    State dict keys: `mixed_depthwise_conv.{i}.weight`.
    """

    example = ({"kernel": [3, 5, 7], "stride": 2}, [(10, 9, 9)])

    name = "mixed_conv2d"
    category = "conv"
    fuse_needs_measurement = True  # the zero-padded kernel does more MACs: faster only where measured
    Args = MixedArgs
    mutable_output = True

    def infer(self, args, shapes):
        shape = shapes[0]
        need_rank(shape, [3], "mixed_conv2d")
        if shape[0] < len(args.kernel):
            raise ValueError(f"{len(args.kernel)} kernel groups need at least as many channels")
        sizes = {spatial_out(shape, k, args.stride, k // 2, 1, "mixed_conv2d") for k in args.kernel}
        if len(sizes) > 1:
            raise ValueError("even and odd kernels give different output sizes; use odd kernels")
        return (shape[0], *sizes.pop())

    def count_params(self, args, shapes):
        parts = split_channels(shapes[0][0], len(args.kernel))
        return sum(c * k * k for c, k in zip(parts, args.kernel))

    def count_macs(self, args, shapes, out):
        return self.count_params(args, shapes) * out[1] * out[2]

    def key_args(self, args):
        return {"k": args.kernel, "s": args.stride}

    def build(self, args, shapes, inplace=False):
        from archspec.ops._torch_modules import SplitConv

        parts = split_channels(shapes[0][0], len(args.kernel))
        convs = [(c, c, k, args.stride, k // 2, c) for c, k in zip(parts, args.kernel)]
        return SplitConv("MDConv", "mixed_depthwise_conv", parts, convs)

    def fused(self, module):
        from archspec.ops._torch_modules import grouped_conv, padded_depthwise

        convs = list(getattr(module, module.attr))
        return (grouped_conv(convs) if len(convs) == 1 else padded_depthwise(convs)), "conv2d"

    def source(self, module):
        return module.source()

    def source_helpers(self):
        from archspec.ops._torch_modules import SplitConv

        return [SplitConv]
