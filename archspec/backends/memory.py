"""What this process can still allocate, checked by the torch builder before it allocates weights.

A backend concern: validation and lowering never read /proc or the cgroup files (their caps are in
`graph/limits.py`, set by the caller)."""

from __future__ import annotations

from archspec.errors import LimitError, Location


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the tightest of its address-space limit, its cgroup's
    memory limit and the machine's available memory. None when nothing can be read."""
    candidates = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        used = _proc_kib("/proc/self/status", "VmSize")
        if soft != resource.RLIM_INFINITY and used is not None:
            candidates.append(soft - used)
    except (ImportError, ValueError, OSError):
        pass
    limit, current = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and current is not None:
        candidates.append(limit - current)
    free = _proc_kib("/proc/meminfo", "MemAvailable")
    if free is not None:
        candidates.append(free)
    return min(candidates) if candidates else None


def check_memory(needed: int, what: str, where: Location) -> None:
    """Refuse before allocating when `needed` bytes (plus a margin) cannot fit."""
    available = available_memory()
    if available is not None and needed * 1.25 > available:
        raise LimitError(f"{what} needs about {needed / 2**20:,.0f} MiB but only {max(available, 0) / 2**20:,.0f} MiB "
                         "is available to this process", where,
                         "use smaller params (--set ...), or a machine or process limit with more memory",
                         code="limit.memory")
