"""Shared args of the windowed pools."""

from archspec.ops.registry import Args, Bool, IntPair, NonNegPair


class PoolArgs(Args):
    kernel: IntPair
    stride: IntPair | None = None
    padding: NonNegPair = 0
    ceil_mode: Bool = False
