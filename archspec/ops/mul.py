from __future__ import annotations

import operator

from archspec.ops._broadcast import broadcast
from archspec.ops.registry import Primitive, register


@register
class Mul(Primitive):
    """Element-wise product with broadcasting (gates: C×H×W times C×1×1). No module."""

    example = ({}, [(3, 4, 5), (3, 1, 1)])

    name = "mul"
    category = "merge"
    min_inputs = 2
    max_inputs = 2
    mutable_output = True

    def infer(self, args, shapes):
        return broadcast(list(shapes), "mul")

    def emit(self, graph, args, inputs, inplace=False):
        return graph.call_function(operator.mul, (inputs[0], inputs[1]))
