from __future__ import annotations

from archspec.ops._pool import WindowPool
from archspec.ops.registry import register


@register
class AvgPool2d(WindowPool):
    """`nn.AvgPool2d`; the stride defaults to the kernel size."""

    example = ({"kernel": 2}, [(3, 8, 8)])

    name = "avgpool2d"
    torch_class = "AvgPool2d"
    mutable_output = True
