from __future__ import annotations

from archspec.ops.registry import Args, Bool, Primitive, need_rank, register


class GlobalPoolArgs(Args):
    keepdim: Bool = False


@register
class GlobalAvgPool(Primitive):
    """Mean over H and W (`x.mean((2, 3))`): C×H×W to C, or C×1×1 with `keepdim`. No module."""

    example = ({"keepdim": True}, [(3, 7, 7)])

    name = "global_avgpool"
    category = "pool"
    Args = GlobalPoolArgs
    mutable_output = True

    def infer(self, args, shapes):
        need_rank(shapes[0], [3], "global_avgpool")
        return (shapes[0][0], 1, 1) if args.keepdim else (shapes[0][0],)

    def emit(self, graph, args, inputs, inplace=False):
        import torch

        return graph.call_function(torch.mean, (inputs[0], (2, 3)), {"keepdim": args.keepdim})
