"""torch module classes that primitives build. Imported only by factories, never at validation."""

from __future__ import annotations

import torch
from torch import nn


class SplitConv(nn.Module):
    """Split channels, convolve each part with its own conv, concatenate.

    `display` is the reference class name (GroupedConv2d, MDConv) so `print(model)` reads alike.
    """

    def __init__(self, display: str, attr: str, split: list[int], convs: list[tuple]):
        super().__init__()
        self.display = display
        self.attr = attr
        self.split = list(split)
        self.convs = [tuple(c) for c in convs]
        setattr(self, attr, nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=p, groups=g, bias=False) for i, o, k, s, p, g in convs))

    def _get_name(self) -> str:
        return self.display

    def source(self) -> str:
        """The constructor call that rebuilds this module (for exported source)."""
        return f"SplitConv({self.display!r}, {self.attr!r}, {self.split!r}, {self.convs!r})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs = getattr(self, self.attr)
        if len(convs) == 1:
            return convs[0](x)
        parts = torch.split(x, self.split, dim=1)
        return torch.cat([conv(part) for conv, part in zip(convs, parts)], dim=1)
