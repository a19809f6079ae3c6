from __future__ import annotations

from archspec.ops.registry import Args, Bool, Eps, Primitive, Prob, need_rank, register


class InstanceNormArgs(Args):
    eps: Eps = 1e-5
    momentum: Prob = 0.1
    affine: Bool = True
    track_running_stats: Bool = False


@register
class InstanceNorm(Primitive):
    """`nn.InstanceNorm2d`; affine by default, as OSNet and IBN-Net use it."""

    example = ({}, [(6, 5, 5)])

    name = "instancenorm"
    category = "norm"
    vector_weight = True
    Args = InstanceNormArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], "instancenorm")
        return shapes[0]

    def count_params(self, args, shapes):
        return 2 * shapes[0][0] if args.affine else 0

    def build(self, args, shapes, inplace=False):
        from torch import nn

        return nn.InstanceNorm2d(shapes[0][0], eps=args.eps, momentum=args.momentum, affine=args.affine,
                                 track_running_stats=args.track_running_stats)
