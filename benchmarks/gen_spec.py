"""Generate large specs for the toolchain benchmark: N calls, written out node by node."""

from __future__ import annotations


def chain_spec(calls: int) -> str:
    """A residual chain of 1x1 convs, ReLUs and adds: `calls` graph nodes, one YAML node each."""
    lines = ["archspec: 1", f"name: chain_{calls}", "input: [8, 8, 8]", "nodes:"]
    for i in range(calls // 3):
        lines.append(f"  - {{name: c{i}, block: conv2d, out: 8}}")
        lines.append(f"  - {{name: r{i}, block: relu}}")
        lines.append(f"  - {{name: a{i}, block: add, from: [r{i}, {'input' if i == 0 else f'a{i - 1}'}]}}")
    return "\n".join(lines) + "\n"
