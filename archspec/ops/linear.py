from __future__ import annotations

from archspec.ops.registry import Args, Bool, PosInt, Primitive, need_rank, register


class LinearArgs(Args):
    out: PosInt
    bias: Bool = True


@register
class Linear(Primitive):
    """`nn.Linear` over a vector input."""

    example = ({"out": 5}, [(7,)])

    name = "linear"
    category = "linear"
    absorbs_norm = True
    Args = LinearArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [1], "linear")
        return (args.out,)

    def count_params(self, args, shapes):
        return shapes[0][0] * args.out + (args.out if args.bias else 0)

    def count_macs(self, args, shapes, out):
        return shapes[0][0] * args.out

    def build(self, args, shapes, inplace=False):
        from torch import nn

        return nn.Linear(shapes[0][0], args.out, bias=args.bias)
