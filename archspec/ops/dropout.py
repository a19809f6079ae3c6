from __future__ import annotations

from archspec.ops.registry import Args, Primitive, Prob, register


class DropoutArgs(Args):
    p: Prob = 0.5


@register
class Dropout(Primitive):
    """`nn.Dropout`: identity in eval mode."""

    example = ({"p": 0.1}, [(7,)])

    name = "dropout"
    category = "regularization"
    passthrough_in_eval = True
    Args = DropoutArgs

    def key_args(self, args):
        return {"p": args.p}

    def build(self, args, shapes, inplace=False):
        from torch import nn

        return nn.Dropout(args.p)
