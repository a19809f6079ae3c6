"""Text summary of a typed graph: one row per block (or per call), with shapes, params and MACs."""

from __future__ import annotations

from dataclasses import dataclass

from archspec.graph.ir import TypedGraph
from archspec.ops.registry import format_shape


@dataclass
class Row:
    name: str
    type: str
    shape: tuple
    params: int = 0
    macs: int = 0


def rows(tg: TypedGraph, depth: int = 2) -> list[Row]:
    """Group runs of consecutive calls by the first `depth` parts of their module path (0: one row per call).

    Rows follow the order of the calls: a shared module called again later (Bottleneck's `relu`) gets a
    row where that call happens, not at the place of its first call.
    """
    table: list[Row] = []
    live = tg.live("eval") | tg.live("train")
    for call in tg.calls():
        if call.id not in live:
            continue
        key = call.id if depth <= 0 else ".".join(call.id.split("@")[0].split(".")[:depth])
        if not table or table[-1].name != key:
            decl = tg.modules.get(key)
            table.append(Row(key, decl.type if decl is not None else call.op, call.out_shape))
        row = table[-1]
        row.shape = call.out_shape
        row.params += call.params
        row.macs += call.macs
    return table


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3f}{unit}"
    return str(int(n))


def render(tg: TypedGraph, depth: int = 2) -> str:
    table = rows(tg, depth)
    head = ("name", "type", "output", "params", "MACs")
    body = [(r.name, r.type, format_shape(r.shape), f"{r.params:,}", human(r.macs)) for r in table]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [f"{tg.name}: input {format_shape(tg.input_shape)} (batch excluded)", line.format(*head),
           "  ".join("-" * w for w in widths)]
    out += [line.format(*b) for b in body]
    out.append("  ".join("-" * w for w in widths))
    outputs = {m: ", ".join(format_shape(s) for s in tg.output_shapes(m)) for m in ("eval", "train")}
    out.append(f"total params: {tg.total_params:,}")
    out.append(f"total MACs (eval, per sample, conv+linear multiply-adds): {tg.total_macs('eval'):,} "
               f"({human(tg.total_macs('eval'))})")
    out.append(f"outputs: eval {outputs['eval']}; train {outputs['train']}")
    return "\n".join(out)
