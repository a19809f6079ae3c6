from __future__ import annotations

from archspec.ops.registry import Args, PosInt, Primitive, format_shape, need_rank, register


class AnchorArgs(Args):
    per_anchor: PosInt


@register
class ToAnchors(Primitive):
    """SSD head layout: C×H×W to (H·W·C/k)×k, i.e. `x.permute(0, 2, 3, 1).reshape(N, -1, k)`. No module."""

    example = ({"per_anchor": 4}, [(24, 3, 5)])

    name = "to_anchors"
    category = "shape"
    Args = AnchorArgs

    def infer(self, args, shapes):
        shape = shapes[0]
        need_rank(shape, [3], "to_anchors")
        if shape[0] % args.per_anchor:
            raise ValueError(f"{format_shape(shape)} has {shape[0]} channels, not a multiple of {args.per_anchor}")
        return (shape[0] // args.per_anchor * shape[1] * shape[2], args.per_anchor)

    def key_args(self, args):
        return {"k": args.per_anchor}

    def emit(self, graph, args, inputs, inplace=False):
        nhwc = graph.call_method("permute", (inputs[0], 0, 2, 3, 1))
        batch = graph.call_method("size", (inputs[0], 0))
        return graph.call_method("reshape", (nhwc, batch, -1, args.per_anchor))
