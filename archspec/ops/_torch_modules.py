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


def grouped_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    """Equal parts: one grouped conv with the parts' weights stacked (one part: that conv itself)."""
    if len(convs) == 1:
        return convs[0]
    first = convs[0]
    conv = nn.Conv2d(first.in_channels * len(convs), first.out_channels * len(convs), first.kernel_size,
                     first.stride, first.padding, first.dilation, groups=len(convs), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([c.weight for c in convs], 0))
    return conv


def padded_depthwise(convs: list[nn.Conv2d]) -> nn.Conv2d:
    """Depthwise parts of different odd kernels: one depthwise conv, smaller kernels zero-padded to the largest."""
    size = max(c.kernel_size[0] for c in convs)
    channels = sum(c.in_channels for c in convs)
    conv = nn.Conv2d(channels, channels, size, convs[0].stride, size // 2, groups=channels, bias=False)
    weight = torch.zeros_like(conv.weight)
    start = 0
    for c in convs:
        k = c.kernel_size[0]
        off = (size - k) // 2
        weight[start:start + c.in_channels, :, off:off + k, off:off + k] = c.weight.detach()
        start += c.in_channels
    with torch.no_grad():
        conv.weight.copy_(weight)
    return conv
