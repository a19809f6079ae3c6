from __future__ import annotations

import operator

from archspec.ops._broadcast import broadcast
from archspec.ops.registry import Primitive, register


@register
class Add(Primitive):
    """Element-wise sum of two or more inputs (residual adds). No module.

    When the first input is not read elsewhere, the builder makes it `+=`, as torchvision does.
    """

    example = ({}, [(3, 4, 5), (3, 4, 5), (3, 4, 5)])

    name = "add"
    category = "merge"
    min_inputs = 2
    max_inputs = 64
    mutable_output = True
    supports_inplace = True

    def infer(self, args, shapes):
        return broadcast(list(shapes), "add")

    def emit(self, graph, args, inputs, inplace=False):
        node = graph.call_function(operator.iadd if inplace else operator.add, (inputs[0], inputs[1]))
        for other in inputs[2:]:
            node = graph.call_function(operator.iadd if inplace else operator.add, (node, other))
        return node
