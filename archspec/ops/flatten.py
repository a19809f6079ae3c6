from __future__ import annotations

import math

from archspec.ops.registry import Primitive, register


@register
class Flatten(Primitive):
    """Flatten all but the batch dimension (`torch.flatten(x, 1)`); batch 1 stays batch 1."""

    example = ({}, [(3, 4, 5)])

    name = "flatten"
    category = "shape"

    def infer(self, args, shapes):
        return (math.prod(shapes[0]),)

    def emit(self, graph, args, inputs, inplace=False):
        import torch

        return graph.call_function(torch.flatten, (inputs[0], 1))

    def build(self, args, shapes, inplace=False):
        from torch import nn

        return nn.Flatten(1)
