"""Text summary of a typed graph: one row per block (or per call), with shapes, params and MACs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.graph.ir import TypedGraph
from archspec.ops import REGISTRY
from archspec.ops.registry import format_shape

KEY_ARGS = {"kernel": "k", "stride": "s", "groups": "g"}  # a block row shows these of its own args


@dataclass
class Row:
    name: str
    type: str
    shape: tuple
    params: int = 0
    macs: int = 0
    in_shape: tuple = ()
    args: str = ""


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
            table.append(Row(key, decl.type if decl is not None else call.op, call.out_shape,
                             in_shape=call.in_shapes[0] if call.in_shapes else (), args=_key_args(decl, call)))
        row = table[-1]
        row.shape = call.out_shape
        row.params += call.param_count
        row.macs += call.macs
    return table


def _key_args(decl, call) -> str:
    """kernel, stride and groups: a primitive's `key_args`, or those a block row was called with."""
    if decl is not None and decl.kind == "container":
        args = {short: (decl.args or {}).get(name) for name, short in KEY_ARGS.items()}
    else:
        args = REGISTRY[call.op].key_args(call.args)
    return " ".join(f"{k}={_value(v)}" for k, v in args.items() if v is not None)


def _value(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def activation_bytes(tg: TypedGraph, batch: int = 1, mode: str = "eval") -> int:
    """float32 bytes of the input and of every output of the calls `mode` runs, at `batch`, none freed:
    what one forward holds at most (torch frees some earlier; autograd in train mode keeps them)."""
    live = tg.live(mode)
    total = math.prod(tg.input_shape) + sum(math.prod(c.out_shape) for c in tg.calls() if c.id in live)
    return 4 * batch * total


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n} B"


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3f}{unit}"
    return str(int(n))


HEAD = ("name", "type", "input", "output", "args", "params", "MACs")


def render(tg: TypedGraph, depth: int = 2, batch: int = 1) -> str:
    """The summary table (shapes without the batch; MACs per sample) and a footer with memory at `batch`."""
    body = [(r.name, r.type, format_shape(r.in_shape), format_shape(r.shape), r.args, f"{r.params:,}",
             human(r.macs)) for r in rows(tg, depth)]
    widths = [max(len(x[i]) for x in [HEAD, *body]) for i in range(len(HEAD))]
    line = "  ".join(f"{{:<{w}}}" if i < 5 else f"{{:>{w}}}" for i, w in enumerate(widths))
    rule = "  ".join("-" * w for w in widths)
    out = [f"{tg.name}: input {format_shape(tg.input_shape)} (batch excluded)", line.format(*HEAD), rule]
    out += [line.format(*b).rstrip() for b in body]
    out.append(rule)
    return "\n".join(out + footer(tg, batch))


def footer(tg: TypedGraph, batch: int = 1) -> list[str]:
    outputs = {m: ", ".join(format_shape(s) for s in tg.output_shapes(m)) for m in ("eval", "train")}
    return [f"total params: {tg.total_params:,}",
            f"total MACs (eval, per sample, conv+linear multiply-adds): {tg.total_macs('eval'):,} "
            f"({human(tg.total_macs('eval'))})",
            f"outputs: eval {outputs['eval']}; train {outputs['train']}",
            f"parameter memory: {human_bytes(4 * tg.total_params)} (float32)",
            f"forward activation memory at batch {batch:,}: {human_bytes(activation_bytes(tg, batch))} "
            "(float32, eval: the input and every call's output, none freed)"]
