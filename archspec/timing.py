"""Side-by-side timing: interleaved repeats, medians (the machine is noisy; only ratios mean much)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def interleaved_medians(fns: Sequence[Callable[[Any], Any]], x: Any, repeats: int = 21, warmup: int = 3) -> list[float]:
    """Median seconds per call of each function on `x`; the order alternates every round."""
    import torch

    times: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for i in range(warmup + repeats):
            order = range(len(fns)) if i % 2 else reversed(range(len(fns)))
            for j in order:
                start = time.perf_counter()
                fns[j](x)
                if i >= warmup:
                    times[j].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]
