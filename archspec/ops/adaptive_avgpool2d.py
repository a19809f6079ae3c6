from __future__ import annotations

from archspec.ops.registry import Args, IntPair, Primitive, need_rank, pair, register


class AdaptiveArgs(Args):
    output_size: IntPair = 1


@register
class AdaptiveAvgPool2d(Primitive):
    """`nn.AdaptiveAvgPool2d`: works at any input size."""

    example = ({"output_size": 2}, [(3, 7, 7)])

    name = "adaptive_avgpool2d"
    category = "pool"
    Args = AdaptiveArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], "adaptive_avgpool2d")
        return (shapes[0][0], *pair(args.output_size))

    def build(self, args, shapes, inplace=False):
        from torch import nn

        size = args.output_size
        return nn.AdaptiveAvgPool2d(size if isinstance(size, int) else pair(size))
