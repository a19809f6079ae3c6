from __future__ import annotations

from archspec.ops.registry import Args, Bool, Eps, Primitive, Prob, need_rank, register


class BatchNormArgs(Args):
    eps: Eps = 1e-5
    momentum: Prob = 0.1
    affine: Bool = True


@register
class BatchNorm(Primitive):
    """Batch norm over channels: `BatchNorm2d` for C×H×W inputs, `BatchNorm1d` for vectors."""

    example = ({}, [(6, 5, 5)])

    name = "batchnorm"
    category = "norm"
    folds_into_previous = True
    vector_weight = True
    Args = BatchNormArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [1, 3], "batchnorm")
        return shapes[0]

    def count_params(self, args, shapes):
        return 2 * shapes[0][0] if args.affine else 0

    def build(self, args, shapes, inplace=False):
        from torch import nn

        cls = nn.BatchNorm2d if len(shapes[0]) == 3 else nn.BatchNorm1d
        return cls(shapes[0][0], eps=args.eps, momentum=args.momentum, affine=args.affine)
