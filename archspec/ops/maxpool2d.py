from __future__ import annotations

from archspec.ops._pool import WindowPool
from archspec.ops.registry import register


@register
class MaxPool2d(WindowPool):
    """`nn.MaxPool2d`; the stride defaults to the kernel size."""

    example = ({"kernel": 3, "stride": 2, "padding": 1}, [(3, 9, 9)])

    name = "maxpool2d"
    torch_class = "MaxPool2d"
