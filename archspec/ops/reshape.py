from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from archspec.ops.registry import Args, PosInt, Primitive, format_shape, register


class ReshapeArgs(Args):
    shape: Annotated[list[PosInt], Field(min_length=1, max_length=4)]


@register
class Reshape(Primitive):
    """Each sample as `shape` (`x.reshape(batch, *shape)`), e.g. an SE vector back to C×1×1. No module."""

    example = ({"shape": [6, 1, 1]}, [(6,)])

    name = "reshape"
    category = "shape"
    Args = ReshapeArgs

    def infer(self, args, shapes):
        if math.prod(args.shape) != math.prod(shapes[0]):
            raise ValueError(f"cannot view {format_shape(shapes[0])} as {format_shape(tuple(args.shape))}")
        return tuple(args.shape)

    def key_args(self, args):
        return {"shape": args.shape}

    def emit(self, graph, args, inputs, inplace=False):
        return graph.call_method("reshape", (inputs[0], -1, *args.shape))
