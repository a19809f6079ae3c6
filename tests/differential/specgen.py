"""A hypothesis strategy for *valid* specs, each with the generator's own model of what it means.

`specs()` draws a spec (as plain data, ready for yaml.safe_dump) together with an `Intent`: the expected
state_dict layout, output shapes, and a way to compute the outputs from weights (intent.py). Specs mix:
random DAGs (chains, `from:` branches, add/mul/concat merges), `seq` with nested items, `repeat` with the
stride rule, tables (list and mapping rows, `name`/`repeat` columns), `when` (single nodes that pass their
input through, and same-name pairs with exclusive conditions), `call` (shared modules and shared blocks),
composite blocks defined in the spec (with params, `input` references, sequence bodies), `hold`, names
that sit next to reserved ones (`block`, `self`, `class`, `x`, `torch`), and outputs per mode.

Every choice is concrete when drawn, so the intent is exact: shapes are tracked as (C, H, W) tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from differential.intent import Block, Call, Op, Seq

# Valid names that sit next to reserved ones or to names the generated code uses.
TRICKY = ["block", "self", "x", "nn", "torch", "F", "class", "def", "lambda", "None_", "inputs", "input_",
          "training_", "Forward", "types", "layer", "out", "add", "relu", "cat", "m", "fx", "operator",
          "module", "weight", "bias", "state", "x_1", "getattr", "super"]
ACTS = ["relu", "relu6", "sigmoid", "swish", "hardswish", "hardsigmoid", "gelu", "tanh"]


@dataclass
class Intent:
    input_shape: tuple
    body: list
    env: dict
    outputs: dict  # mode -> list of top-level names
    output_shapes: dict  # mode -> list of shapes (batch excluded)


@dataclass
class Value:
    name: str
    shape: tuple


@dataclass
class Scope:
    """One node list being generated: what it can read, and what it wrote."""

    input_shape: tuple
    concrete_flag: bool | None  # the flag's value where it is known (top level); None inside blocks
    values: list = field(default_factory=list)  # Values readable by name
    used: set = field(default_factory=set)
    nodes: list = field(default_factory=list)  # YAML
    body: list = field(default_factory=list)  # intent records
    consumed: set = field(default_factory=set)
    modules: dict = field(default_factory=dict)  # name -> (Op or Block intent, input shape): `call:` targets
    prev: Value | None = None
    shapes: dict = field(default_factory=dict)  # name -> shape (what the name reads as)

    def __post_init__(self):
        self.prev = Value("input", self.input_shape)
        self.shapes["input"] = self.input_shape


class Generator:
    def __init__(self, draw, max_nodes: int = 8):
        self.draw = draw
        self.max_nodes = max_nodes
        self.blocks: dict = {}  # YAML block definitions
        self.block_count = 0
        self.flag = draw(st.booleans())

    # ---- helpers ----------------------------------------------------------------------------------
    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def chance(self, p: float = 0.5) -> bool:
        return self.draw(st.floats(0, 1)) < p

    def fresh_name(self, scope: Scope) -> str:
        pool = [n for n in TRICKY if n not in scope.used]
        name = self.pick(pool) if pool and self.chance(0.4) else f"n{len(scope.used)}"
        while name in scope.used:
            name += "_"
        scope.used.add(name)
        return name

    def source(self, scope: Scope) -> Value:
        """The previous value, or sometimes another readable one (a branch)."""
        if scope.values and self.chance(0.3):
            return self.pick(scope.values + [Value("input", scope.input_shape)])
        return scope.prev

    # ---- primitives -------------------------------------------------------------------------------
    def conv(self, shape: tuple, keep: bool = False) -> tuple[dict, Op, tuple]:
        """A conv2d (args, intent, output shape); `keep` keeps the shape."""
        c, h, w = shape
        kernel = 1 if keep and self.chance() else self.pick([1, 3])
        dilation = 2 if kernel == 3 and min(h, w) >= 5 and self.chance(0.2) else 1
        padding = dilation * (kernel // 2) if keep or self.chance(0.7) else 0
        stride = 1 if keep or min(h, w) < 4 else self.pick([1, 1, 2])
        out = c if keep else self.draw(st.integers(1, 6))
        groups = self.pick([g for g in (1, 2, 3) if c % g == 0 and out % g == 0])
        bias = self.chance()
        args = {"out": out, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                "groups": groups, "bias": bias}
        ho = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        wo = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        if ho < 1 or wo < 1:  # unpadded, it would collapse the map: pad instead
            args["padding"] = padding = dilation * (kernel // 2)
            ho = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
            wo = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        weights = {"weight": (out, c // groups, kernel, kernel), **({"bias": (out,)} if bias else {})}
        yaml_args = {k: v for k, v in args.items() if v != {"stride": 1, "padding": 0, "dilation": 1,
                                                            "groups": 1, "bias": True}.get(k)}
        return {"block": "conv2d", **yaml_args}, Op("conv2d", args, weights), (out, ho, wo)

    def unary(self, shape: tuple, keep: bool = False) -> tuple[dict, Op, tuple]:
        """A shape-keeping op, or (unless `keep`) a conv, a pool, or a head that makes a vector."""
        if len(shape) == 1:
            return self.vector_unary(shape, keep)
        if not keep and self.chance(0.08):
            return self.head(shape)
        if not keep and self.chance(0.08) and shape[0] >= 2:
            return self.grouped_conv(shape)
        c, h, w = shape
        kinds = ["conv", "bn", "act", "act"] + ([] if keep or min(h, w) < 2 else ["pool"]) + \
            ([] if keep or c < 2 else ["slice"])
        kind = self.pick(kinds)
        if kind == "conv":
            return self.conv(shape, keep)
        if kind == "bn":
            bn = {"eps": 1e-5, "momentum": 0.1}
            weights = {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,),
                       "num_batches_tracked": ()}
            return {"block": "batchnorm"}, Op("batchnorm", bn, weights), shape
        if kind == "act":
            act = self.pick(ACTS)
            if self.chance(0.2):
                return {"block": "act", "kind": act}, Op("act", {"kind": act}), shape
            return {"block": act}, Op(act, {}), shape
        if kind == "slice":
            stop = self.draw(st.integers(1, c))
            return {"block": "channel_slice", "stop": stop}, Op("channel_slice", {"start": 0, "stop": stop},
                                                                 module=False), (stop, h, w)
        op = self.pick(["maxpool2d", "avgpool2d"])
        return {"block": op, "kernel": 2}, Op(op, {"kernel": 2, "stride": 2}), (c, h // 2, w // 2)

    def vector_unary(self, shape: tuple, keep: bool) -> tuple[dict, Op, tuple]:
        c = shape[0]
        kind = self.pick(["bn", "act"] + ([] if keep else ["linear", "linear"]))
        if kind == "linear":
            out, bias = self.draw(st.integers(1, 6)), self.chance()
            weights = {"weight": (out, c), **({"bias": (out,)} if bias else {})}
            node = {"block": "linear", "out": out, **({} if bias else {"bias": False})}
            return node, Op("linear", {"out": out}, weights), (out,)
        if kind == "bn":
            weights = {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,),
                       "num_batches_tracked": ()}
            return {"block": "batchnorm"}, Op("batchnorm", {}, weights), shape
        act = self.pick(ACTS)
        return {"block": act}, Op(act, {}), shape

    def head(self, shape: tuple) -> tuple[dict, Op, tuple]:
        """C×H×W -> a vector: global mean, or flatten."""
        if self.chance():
            return {"block": "global_avgpool"}, Op("global_avgpool", {}, module=False), shape[:1]
        return {"block": "flatten"}, Op("flatten", {}), (shape[0] * shape[1] * shape[2],)

    def grouped_conv(self, shape: tuple) -> tuple[dict, Op, tuple]:
        """MixNet's GroupedConv2d: uneven channel split, one conv per group (equal kernels: equal sizes)."""
        c, h, w = shape
        out = self.draw(st.integers(2, 6))
        groups = self.draw(st.integers(2, min(c, out, 3)))
        k = self.pick([1, 3])
        args = {"out": out, "kernel": [k] * groups, "padding": k // 2}
        ins, outs = split(c, groups), split(out, groups)
        weights = {f"grouped_conv.{i}.weight": (o, n, k, k) for i, (n, o) in enumerate(zip(ins, outs))}
        return {"block": "grouped_conv2d", **args}, Op("grouped_conv2d", args, weights), (out, h, w)

    # ---- scope-level nodes -------------------------------------------------------------------------
    def body(self, scope: Scope, count: int) -> None:
        for _ in range(count):
            kind = self.pick(["unary", "unary", "unary", "merge", "seq", "repeat", "table", "when", "pair",
                              "call", "call", "block", "hold"])
            getattr(self, "node_" + kind)(scope)

    def emit(self, scope: Scope, yaml_node: dict, record, src: Value, out_shape: tuple,
             refs: list[Value] | None = None, bind: bool = True) -> Value:
        """Append a node; `refs` are explicit inputs (default: `src`, written as `from:` if not previous)."""
        refs = refs if refs is not None else [src]
        if len(refs) > 1 or refs[0] is not scope.prev:
            yaml_node["from"] = refs[0].name if len(refs) == 1 else [r.name for r in refs]
            record.refs = [r.name for r in refs]
        for r in refs:
            scope.consumed.add(r.name)
        scope.nodes.append(yaml_node)
        scope.body.append(record)
        value = Value(yaml_node["name"], out_shape)
        if bind:
            scope.values.append(value)
            scope.shapes[value.name] = out_shape
        scope.prev = value
        return value

    def node_unary(self, scope: Scope) -> None:
        src = self.source(scope)
        node, record, shape = self.unary(src.shape)
        name = self.fresh_name(scope)
        node = {"name": name, **node}
        record.name = name
        if record.module and record.weights and self.chance(0.6):
            scope.modules[name] = (record, src.shape)
        if node["block"] == "channel_slice":
            record.module = False
        self.emit(scope, node, record, src, shape)

    def node_merge(self, scope: Scope) -> None:
        src = self.source(scope)
        same = [v for v in scope.values if v.shape == src.shape and v.name != src.name]
        same_hw = [v for v in scope.values if v.shape[1:] == src.shape[1:] and v.name != src.name]
        kind = self.pick(["add", "mul", "concat"])
        if kind in ("add", "mul") and same:
            other = self.pick(same)
            op, shape = kind, src.shape
        elif same_hw:
            other = self.pick(same_hw)
            op, shape = "concat", (src.shape[0] + other.shape[0],) + src.shape[1:]
        else:
            return self.node_unary(scope)
        name = self.fresh_name(scope)
        self.emit(scope, {"name": name, "block": op}, Op(op, {}, module=False, name=name), src, shape,
                  refs=[src, other])

    def seq_items(self, shape: tuple, depth: int = 0) -> tuple[list, list, tuple]:
        items, records = [], []
        for _ in range(self.draw(st.integers(1, 3))):
            if depth < 1 and self.chance(0.15):
                sub, subrec, shape = self.seq_items(shape, depth + 1)
                items.append({"seq": sub})
                records.append(Seq(subrec))
                continue
            keep = self.chance(0.3)
            node, record, new_shape = self.unary(shape, keep=keep)
            if record.op in ("channel_slice", "global_avgpool"):  # functions with no module form
                continue
            if keep and self.chance(0.3):  # an item that exists only under the flag takes no index
                node["when"] = record.when = self.pick(["flag", "not flag"])
            elif self.chance(0.15) and record.op == "conv2d" and len(shape) == 3 and record.args["stride"] == 1 \
                    and shape[0] == new_shape[0] and shape[1:] == new_shape[1:]:
                n = self.draw(st.integers(2, 3))
                node["repeat"] = n
                items.append(node)
                records.extend([record] * n)
                continue
            items.append(node)
            records.append(record)
            shape = new_shape
        if not records:
            return self.seq_items(shape, depth)
        if all(r.when for r in records):  # a seq with no item would be its input: keep one unconditional
            items[0].pop("when")
            records[0].when = None
        return items, records, shape

    def node_seq(self, scope: Scope) -> None:
        src = self.source(scope)
        items, records, shape = self.seq_items(src.shape)
        name = self.fresh_name(scope)
        self.emit(scope, {"name": name, "seq": items}, Seq(records, name=name), src, shape)

    def repeated_convs(self, shape: tuple, out: int, stride: int, n: int) -> tuple[list, tuple]:
        records = []
        for i in range(n):
            _, record, _ = self.conv(shape)
            c, h, w = shape
            s = stride if i == 0 else 1
            record.args.update(out=out, kernel=3, padding=1, stride=s, dilation=1, groups=1, bias=False)
            record.weights = {"weight": (out, c, 3, 3)}
            shape = (out, (h - 1) // s + 1, (w - 1) // s + 1)
            records.append(record)
        return records, shape

    def node_repeat(self, scope: Scope) -> None:
        src = self.source(scope)
        if len(src.shape) == 1:
            return self.node_unary(scope)
        n = self.draw(st.integers(1, 3))
        stride = 2 if min(src.shape[1:]) >= 4 and self.chance() else 1
        out = self.draw(st.integers(1, 5))
        records, shape = self.repeated_convs(src.shape, out, stride, n)
        name = self.fresh_name(scope)
        node = {"name": name, "block": "conv2d", "out": out, "kernel": 3, "padding": 1, "stride": stride,
                "bias": False, "repeat": n}
        if self.chance(0.3):
            node["in_channels"] = src.shape[0]  # a stated input width is checked
        self.emit(scope, node, Seq(records, name=name), src, shape)

    def node_table(self, scope: Scope) -> None:
        """Rows chain: each reads the row before (a `from:` on the node would feed every row)."""
        src = scope.prev
        if len(src.shape) == 1:
            return self.node_unary(scope)
        rows, records, values = [], [], []
        shape = src.shape
        with_repeat = self.chance()
        for _ in range(self.draw(st.integers(1, 3))):
            name = self.fresh_name(scope)
            out = self.draw(st.integers(1, 5))
            n = self.draw(st.integers(1, 2)) if with_repeat else None
            stride = 2 if min(shape[1:]) >= 4 and self.chance(0.3) else 1
            if n is None:
                reps, new_shape = self.repeated_convs(shape, out, stride, 1)
                record = reps[0]
                record.name = name
            else:
                reps, new_shape = self.repeated_convs(shape, out, stride, n)
                record = Seq(reps, name=name)
            as_map = self.chance(0.3)
            row = {"name": name, "out": out, "stride": stride} if as_map else [name, out, stride]
            if with_repeat:
                row = {**row, "repeat": n} if as_map else row + [n]
            rows.append(row)
            records.append(record)
            values.append(Value(name, new_shape))
            shape = new_shape
        columns = ["name", "out", "stride"] + (["repeat"] if with_repeat else [])
        node = {"block": "conv2d", "kernel": 3, "padding": 1, "bias": False,
                "table": {"columns": columns, "rows": rows}}
        scope.consumed.add(src.name)
        scope.nodes.append(node)
        scope.body.extend(records)
        for value in values:
            scope.consumed.add(value.name)
            scope.values.append(value)
            scope.shapes[value.name] = value.shape
        scope.consumed.discard(values[-1].name)
        scope.prev = values[-1]

    def node_when(self, scope: Scope) -> None:
        """A node that exists only under a condition; absent, its name stands for its input."""
        # Inside a block the condition is not known here: read the previous node, keep its shape, so that
        # what follows has one shape either way.
        src = self.source(scope) if scope.concrete_flag is not None else scope.prev
        before = scope.prev
        keep = scope.concrete_flag is None or self.chance()
        node, record, shape = self.unary(src.shape, keep=keep)
        if record.op in ("channel_slice", "global_avgpool"):
            return self.node_unary(scope)
        when = self.pick(["flag", "not flag", "true", "false"])
        present = {"flag": scope.concrete_flag, "not flag": None if scope.concrete_flag is None
                   else not scope.concrete_flag, "true": True, "false": False}[when]
        name = self.fresh_name(scope)
        node = {"name": name, **node, "when": when if when in ("flag", "not flag") else when == "true"}
        record.name, record.when = name, when
        out_shape = shape if present or present is None else src.shape
        read_before = src.name in scope.consumed
        self.emit(scope, node, record, src, out_shape)
        if present is False:  # absent: its name reads its input, and the chain goes on from `before`
            scope.prev = before
            scope.consumed.add(name)  # nothing to read: it is no node (and may stand for the input)
            if not read_before:
                scope.consumed.discard(src.name)
        # the next node reads it, so that a present node is never left unread
        self.node_unary(scope)

    def node_pair(self, scope: Scope) -> None:
        """Two nodes of one name with exclusive conditions: the name is the one that exists."""
        src = self.source(scope)
        name = self.fresh_name(scope)
        first = self.pick(["flag", "not flag"])
        second = "not flag" if first == "flag" else "flag"
        present_first = None if scope.concrete_flag is None else (scope.concrete_flag == (first == "flag"))
        keep = scope.concrete_flag is None
        a, ra, sa = self.unary(src.shape, keep=keep)
        b, rb, sb = self.unary(src.shape, keep=keep)
        if {"channel_slice", "global_avgpool"} & {ra.op, rb.op} or sa != sb and scope.concrete_flag is None:
            return self.node_unary(scope)
        merge = [v for v in scope.values if v.shape == src.shape and v.name != src.name]
        if scope.concrete_flag is not None and merge and self.chance(0.4):  # the issue's own example
            other = self.pick(merge)
            a, ra, sa = {"block": "concat"}, Op("concat", {}, module=False), (2 * src.shape[0],) + src.shape[1:]
            b, rb, sb = {"block": "add"}, Op("add", {}, module=False), src.shape
            refs = [src, other]
        else:
            refs = [src]
        for node, record, cond in ((a, ra, first), (b, rb, second)):
            node.update(name=name, when=cond)
            record.name, record.when = name, cond
        shape = sa if present_first or present_first is None else sb
        self.emit(scope, a, ra, src, sa, refs=list(refs), bind=False)
        self.emit(scope, b, rb, src, shape, refs=list(refs))

    def node_call(self, scope: Scope) -> None:
        """`call:` a module defined earlier here, on another input of the width it was built for."""
        options = []
        for target, (record, in_shape) in scope.modules.items():
            for v in scope.values + [Value("input", scope.input_shape)]:
                if v.shape[0] == in_shape[0] and len(v.shape) == len(in_shape) and \
                        (isinstance(record, Op) or v.shape == in_shape):
                    options.append((target, v))
        if not options:
            return self.node_unary(scope)
        target, src = self.pick(options)
        record, in_shape = scope.modules[target]
        if isinstance(record, Op) and record.op == "conv2d":
            shape = self.conv_shape(record.args, src.shape) if len(src.shape) == 3 else None
            if shape is None:
                return self.node_unary(scope)
        elif isinstance(record, Op) and record.op == "linear":
            shape = (record.args["out"],)
        elif isinstance(record, Op) and record.op == "grouped_conv2d":
            return self.node_unary(scope)
        elif isinstance(record, Op):
            shape = src.shape
        else:
            shape = scope.shapes[target]
        name = self.fresh_name(scope)
        self.emit(scope, {"name": name, "call": target}, Call(target, name=name), src, shape, refs=[src])

    @staticmethod
    def conv_shape(args: dict, shape: tuple) -> tuple | None:
        k, s, p, d = args["kernel"], args["stride"], args["padding"], args["dilation"]
        h, w = ((n + 2 * p - d * (k - 1) - 1) // s + 1 for n in shape[1:])
        return (args["out"], h, w) if h >= 1 and w >= 1 else None

    def node_hold(self, scope: Scope) -> None:
        """A module that exists only for its weights; the next node reads the node before it."""
        c = self.draw(st.integers(1, 4))
        out = self.draw(st.integers(1, 4))
        name = self.fresh_name(scope)
        scope.nodes.append({"name": name, "block": "linear", "out": out, "hold": True, "input_shape": [c]})
        scope.body.append(Op("linear", {"out": out}, {"weight": (out, c), "bias": (out,)}, name=name, hold=True))

    # ---- composite blocks -------------------------------------------------------------------------
    def node_block(self, scope: Scope) -> None:
        src = self.source(scope)
        reuse = [b for b in self.blocks.values() if b["_in_shape"] == src.shape]
        if reuse and self.chance(0.4):
            block = self.pick(reuse)
        else:
            if len(self.blocks) >= 3:
                return self.node_unary(scope)
            block = self.define_block(src.shape)
        flag = self.draw(st.booleans())
        name = self.fresh_name(scope)
        node = {"name": name, "block": block["block"]}
        if flag != block["params"]["flag"]["default"] or self.chance(0.3):
            node["flag"] = flag
        if block["_width"] is not None and self.chance(0.5):
            node["c"] = block["_width"] if self.chance() else f"{block['_width']} + 0"
        record = Block(block["_body"], {"flag": flag}, name=name, sequence=block["_sequence"])
        scope.modules[name] = (record, src.shape)
        self.emit(scope, node, record, src, block["_out_shape"])

    def define_block(self, in_shape: tuple) -> dict:
        self.block_count += 1
        name = f"Blk{self.block_count}"
        default = self.draw(st.booleans())
        if self.chance(0.2):  # a block that is one unnamed seq becomes an nn.Sequential itself
            items, records, shape = self.seq_items(in_shape)
            nodes, body, sequence = [{"seq": items}], records, True
        else:
            inner = Scope(in_shape, None)
            self.body(inner, self.draw(st.integers(1, 5)))
            shape = self.close(inner)
            nodes, body, sequence = inner.nodes, inner.body, False
        params, lets, width = {"flag": {"type": "bool", "default": default}}, {}, None
        conv = next((n for n in nodes if n.get("block") == "conv2d" and isinstance(n.get("out"), int)), None)
        if conv is not None:  # its width through a param and a `let` expression
            width = conv["out"]
            params["c"] = {"type": "int", "default": width, "min": 1}
            lets["twice"] = "c * 2"
            conv["out"] = self.pick(["c", "twice // 2", "max(c, 1)"])
        block = {"block": name, "params": params, **({"let": lets} if lets else {}), "nodes": nodes,
                 "_in_shape": in_shape, "_out_shape": shape, "_body": body, "_sequence": sequence, "_width": width}
        self.blocks[name] = block
        return block

    def close(self, scope: Scope) -> tuple:
        """End a node list so that every value is read: unread ones join the last by concatenation."""
        if not scope.body or all(isinstance(r, Op) and r.hold for r in scope.body):
            self.node_unary(scope)
        last = scope.prev
        loose = [v for v in scope.values if v.name not in scope.consumed and v.name != last.name]
        if any(len(v.shape) == 1 for v in [last, *loose]):  # join as vectors: global mean of the maps
            last = self.as_vector(scope, last)
            loose = [self.as_vector(scope, v) for v in loose]
        parts = [last]
        for v in loose:
            if v.shape[1:] != last.shape[1:]:
                name = self.fresh_name(scope)
                args = {"output_size": list(last.shape[1:])}
                v = self.emit(scope, {"name": name, "block": "adaptive_avgpool2d", **args},
                              Op("adaptive_avgpool2d", args, name=name), v, v.shape[:1] + last.shape[1:], refs=[v])
            parts.append(v)
        if len(parts) > 1:
            name = self.fresh_name(scope)
            shape = (sum(p.shape[0] for p in parts),) + last.shape[1:]
            self.emit(scope, {"name": name, "block": "concat"}, Op("concat", {}, module=False, name=name), last,
                      shape, refs=parts)
        return scope.prev.shape

    def as_vector(self, scope: Scope, v: Value) -> Value:
        if len(v.shape) == 1:
            return v
        name = self.fresh_name(scope)
        return self.emit(scope, {"name": name, "block": "global_avgpool"},
                         Op("global_avgpool", {}, module=False, name=name), v, v.shape[:1], refs=[v])

    # ---- the whole spec ---------------------------------------------------------------------------
    def spec(self) -> tuple[dict, Intent]:
        c = self.draw(st.integers(1, 4))
        h = self.draw(st.sampled_from([4, 5, 6, 8]))
        top = Scope((c, h, h), self.flag)
        self.body(top, self.draw(st.integers(1, self.max_nodes)))
        if top.body and isinstance(top.body[-1], Op) and top.body[-1].when or not top.body \
                or isinstance(top.body[-1], Op) and top.body[-1].hold:
            self.node_unary(top)
        outputs, output_shapes = self.outputs(top)
        data = {"archspec": 1, "name": "generated", "input": list(top.input_shape),
                "params": {"flag": {"type": "bool", "default": self.flag}}}
        if self.blocks:
            data["blocks"] = {n: {k: v for k, v in b.items() if not k.startswith("_")} for n, b in self.blocks.items()}
        data["nodes"] = top.nodes
        if outputs is not None:
            data["outputs"] = outputs
        names = {m: ([top.prev.name] if outputs is None else self._names(outputs[m])) for m in ("train", "eval")}
        return data, Intent(top.input_shape, top.body, {"flag": self.flag}, names, output_shapes)

    def _names(self, refs) -> list[str]:
        if isinstance(refs, str):
            return [refs]
        return [r if isinstance(r, str) else r["ref"] for r in refs
                if isinstance(r, str) or r["when"] == "true" or (r["when"] == "flag") == self.flag]

    def outputs(self, top: Scope):
        """Default (the last node), one merged output, or outputs per mode that together read every
        unread value (so that no module is dead)."""
        last = top.prev
        loose = [v for v in top.values if v.name not in top.consumed and v.name != last.name]
        if not loose and self.chance(0.5):
            return None, {m: [last.shape] for m in ("train", "eval")}
        if self.chance(0.3):
            self.close(top)
            return None, {m: [top.prev.shape] for m in ("train", "eval")}
        both = [last] + loose
        eval_part = [v for v in both if self.chance(0.6)] or [last]
        train_part = [v for v in both if v not in eval_part]
        train = [v.name for v in train_part]
        extra = [v for v in eval_part if v not in train_part and self.chance(0.3)]
        train += [{"ref": v.name, "when": "flag" if self.flag else "not flag"} for v in extra]
        if not train:
            train = [eval_part[0].name]
        shapes = {"eval": [v.shape for v in eval_part],
                  "train": [top.shapes[r if isinstance(r, str) else r["ref"]] for r in train]}
        return {"train": train, "eval": [v.name for v in eval_part]}, shapes


def split(total: int, groups: int) -> list[int]:
    """MixNet's channel split: equal parts, the first one takes the remainder."""
    parts = [total // groups] * groups
    parts[0] += total - sum(parts)
    return parts


@st.composite
def specs(draw, max_nodes: int = 8):
    """(spec data, Intent) pairs of valid specs."""
    return Generator(draw, max_nodes).spec()
