"""Resource caps, set by the caller (never by the spec) and checked before anything is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import LimitError, Location


@dataclass(frozen=True)
class Limits:
    max_params: int = 2_000_000_000
    max_calls: int = 200_000
    max_repeat: int = 4096
    max_activation_bytes: int = 16 << 30

    def check_repeat(self, count: int, where: Location) -> None:
        if count > self.max_repeat:
            raise LimitError(f"repeat {count} exceeds the cap of {self.max_repeat}", where,
                             "raise the cap with --max-repeat if you mean it", code="limit.repeat")

    def check_graph(self, calls: int, params: int, where: Location) -> None:
        if calls > self.max_calls:
            raise LimitError(f"the graph has more than {self.max_calls} calls", where,
                             "raise the cap with --max-calls if you mean it", code="limit.calls")
        if params > self.max_params:
            raise LimitError(f"the model would have more than {self.max_params:,} params (so far {params:,})",
                             where, "raise the cap with --max-params if you mean it", code="limit.params")
