from __future__ import annotations

from archspec.ops.registry import Primitive, format_shape, register


@register
class Concat(Primitive):
    """Concatenate along channels. Every other dimension must agree. No module."""

    example = ({}, [(3, 4, 5), (2, 4, 5)])

    name = "concat"
    category = "merge"
    min_inputs = 2
    max_inputs = 64
    mutable_output = True

    def infer(self, args, shapes):
        rest = {tuple(s[1:]) for s in shapes}
        if len(rest) > 1 or len({len(s) for s in shapes}) > 1:
            listed = ", ".join(format_shape(s) for s in shapes)
            raise ValueError(f"concat inputs differ outside the channel dimension: {listed}")
        return (sum(s[0] for s in shapes), *shapes[0][1:])

    def emit(self, graph, args, inputs, inplace=False):
        import torch

        return graph.call_function(torch.cat, (list(inputs),), {"dim": 1})
