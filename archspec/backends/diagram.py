"""Architecture diagrams from the typed graph (graphviz DOT). No torch, no forward pass.

Level of detail: at depth d, every call is drawn as part of the node named by the first d parts of
its module path; containers above that level become labelled clusters. Consecutive identical
blocks in a sequence collapse into one node marked ×N. A module called several times (OSNet's
gate) stays one node, with one edge per call.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

import graphviz

from archspec.backends.summary import human
from archspec.errors import LimitError, Location
from archspec.graph.ir import INPUT, TypedGraph
from archspec.ops import REGISTRY
from archspec.ops.registry import format_shape

COLOURS = {
    "conv": "#cfe2f3", "norm": "#d9ead3", "activation": "#fff2cc", "pool": "#f4cccc",
    "attention": "#ead1dc", "linear": "#d0e0e3", "merge": "#fce5cd", "shape": "#eeeeee",
    "regularization": "#eeeeee", "block": "#f3f3f3", "io": "#ffffff",
}
MAX_NODES = 600
MAX_EDGES = 2000  # checked before anything is laid out: `dot` is superlinear in edges (64-input concats)


@dataclass
class Group:
    key: str
    calls: list = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # keys merged into this node (×N)


_UNSAFE = re.compile("[^\x0A\x20-\x7E\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def escape(text: str) -> graphviz.nohtml:
    """Text for a DOT label: backslashes start DOT escapes (\\N, \\G, \\l), so they are doubled; the graphviz
    library escapes quotes; `nohtml` keeps a label such as `<b>...</b>` text, never an HTML label; and any
    character that XML (the SVG output) cannot hold becomes U+FFFD. `dot` escapes `<`, `>` and `&` in SVG."""
    return graphviz.nohtml(_UNSAFE.sub("\uFFFD", str(text)).replace("\\", "\\\\"))


def _base(call_id: str) -> str:
    return call_id.split("@")[0]


def _key(call_id: str, depth: int) -> str:
    return ".".join(_base(call_id).split(".")[:depth])


class Diagram:
    def __init__(self, tg: TypedGraph, depth: int, rankdir: str, max_nodes: int, max_edges: int = MAX_EDGES):
        self.tg = tg
        self.max_edges = max_edges
        # depth 0 means every call, as in the summary: as deep as the deepest module path
        self.depth = depth if depth > 0 else max((len(_base(c.id).split(".")) for c in tg.calls()), default=1)
        self.rankdir = rankdir
        self.max_nodes = max_nodes
        self.live = tg.live("eval") | tg.live("train")
        self.groups = self._groups()
        self.alias = self._collapse()

    # ---- grouping ---------------------------------------------------------------------------
    def _groups(self) -> dict[str, Group]:
        groups: dict[str, Group] = {}
        for call in self.tg.calls():
            if call.id in self.live:
                key = _key(call.id, self.depth)
                groups.setdefault(key, Group(key, members=[key])).calls.append(call)
        if len(groups) > self.max_nodes:
            raise LimitError(f"the diagram would have {len(groups)} nodes (at most {self.max_nodes})",
                             self._where(), self._hint(), code="limit.diagram_nodes")
        return groups

    def _hint(self) -> str:
        if self.depth > 1:
            return f"use a smaller --depth than {self.depth}"
        return "even its top-level blocks are too many to lay out; `archspec build` prints the table instead"

    def _where(self) -> Location:
        """A diagram refusal points at the spec: its `nodes:` key when the spec is the graph's file."""
        return Location(self.tg.file or "<spec>", 1, 1, ("nodes",))

    def _collapse(self) -> dict[str, str]:
        """Runs of identical, shape-keeping sibling blocks in a sequence become one node (×N)."""
        alias: dict[str, str] = {}
        keys = list(self.groups)
        run: list[str] = []
        for key in keys + [""]:
            if run and self._same_run(run[-1], key):
                run.append(key)
                continue
            if len(run) > 1:
                head = self.groups[run[0]]
                for other in run[1:]:
                    alias[other] = run[0]
                    head.calls += self.groups.pop(other).calls
                    head.members.append(other)
            run = [key]
        return alias

    def _same_run(self, a: str, b: str) -> bool:
        if not b or a.rpartition(".")[0] != b.rpartition(".")[0] or not b.rpartition(".")[2].isdigit():
            return False
        da, db = self.tg.modules.get(a), self.tg.modules.get(b)
        if da is None or db is None or da.type != db.type or da.kind != "container" or da.args != db.args:
            return False
        first, last = self._in_out(a)
        return first == last and self._in_out(b) == (first, last)

    def _in_out(self, key: str) -> tuple[tuple, tuple]:
        calls = self.groups[key].calls
        producers = [i for c in calls for i in c.inputs if _key(i, self.depth) != key] if calls else []
        shape_in = self.tg.shape_of(producers[0]) if producers else ()
        return shape_in, calls[-1].out_shape

    def node_of(self, call_id: str) -> str:
        if call_id == INPUT:
            return INPUT
        key = _key(call_id, self.depth)
        return self.alias.get(key, key)

    # ---- labels -----------------------------------------------------------------------------
    def _kind(self, key: str) -> tuple[str, str]:
        """(type name, colour category) of a node."""
        decl = self.tg.modules.get(key)
        if decl is not None and decl.kind == "container":
            return decl.type, "block"
        op = decl.type if decl is not None else self.groups[key].calls[0].op
        return op, REGISTRY[op].category

    def _params(self, key: str) -> int:
        return sum(m.param_count for path, m in self.tg.modules.items() if path == key or path.startswith(key + "."))

    def _args(self, key: str) -> str:
        decl = self.tg.modules.get(key)
        if decl is not None and decl.kind == "container":
            args = decl.args or {}
            if decl.type == "Sequential":
                return self._sequence_summary(key)
        else:
            call = self.groups[key].calls[0]
            args = REGISTRY[call.op].key_args(call.args)
        return " ".join(f"{k}={_short(v)}" for k, v in list(args.items())[:4])

    def _sequence_summary(self, key: str) -> str:
        children = [m for p, m in self.tg.modules.items() if p.rpartition(".")[0] == key]
        counts = Counter(m.type for m in children)
        parts = [f"{t} ×{n}" if n > 1 else t for t, n in counts.items()]
        return ", ".join(parts[:4]) + (", ..." if len(parts) > 4 else "")

    def label(self, group: Group) -> str:
        type_name, _ = self._kind(group.key)
        first, last = (m.rsplit(".", 1)[-1] for m in (group.members[0], group.members[-1]))
        name = first if len(group.members) == 1 else f"{first} … {last}"
        times = f" ×{len(group.members)}" if len(group.members) > 1 else ""
        lines = [f"{name}", f"{type_name}{times}"]
        args = self._args(group.key)
        if args:
            lines.append(args)
        params = sum(self._params(m) for m in group.members)
        lines.append(f"{human(params)} params" if params else "no params")
        calls = self.tg.modules.get(group.key).calls if group.key in self.tg.modules else 1
        if calls > 1 and len(group.members) == 1:
            lines.append(f"shared: 1 module, {calls} calls")
        return escape("\n".join(lines))

    # ---- clusters and output ----------------------------------------------------------------
    def _cluster_path(self, key: str) -> list[str]:
        parts = key.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts))
                if self.tg.modules.get(".".join(parts[:i]), None) is not None]

    def render(self) -> graphviz.Digraph:
        tg = self.tg
        dot = graphviz.Digraph(tg.name, graph_attr={
            "rankdir": self.rankdir, "fontname": "Helvetica", "labelloc": "t", "fontsize": "16",
            "label": escape(f"{tg.name}: {tg.total_params:,} params, {human(tg.total_macs('eval'))} MACs, "
                            f"input {format_shape(tg.input_shape)}"),
            "nodesep": "0.25", "ranksep": "0.3"},
            node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10"},
            edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#555555"})
        dot.node(INPUT, escape(f"input\n{format_shape(tg.input_shape)}"), shape="oval", fillcolor=COLOURS["io"])
        tree: dict[str, list] = {"": []}
        for group in self.groups.values():
            path = self._cluster_path(group.key)
            parent = ""
            for cluster in path:
                tree.setdefault(cluster, [])
                if cluster not in tree[parent]:
                    tree[parent].append(cluster)
                parent = cluster
            tree[parent].append(group)
        self._emit(dot, tree, "")
        self._edges(dot)
        self._outputs(dot)
        return dot

    def _emit(self, dot: graphviz.Digraph, tree: dict, parent: str) -> None:
        for item in tree[parent]:
            if isinstance(item, Group):
                _, category = self._kind(item.key)
                dot.node(item.key, self.label(item), fillcolor=COLOURS[category])
                continue
            decl = self.tg.modules[item]
            with dot.subgraph(name=f"cluster_{item}") as sub:
                sub.attr(label=escape(f"{item}: {decl.type}"), style="rounded,dashed", color="#999999",
                         fontsize="10")
                self._emit(sub, tree, item)

    def _edges(self, dot: graphviz.Digraph) -> None:
        seen = set()
        edges = []
        for call in self.tg.calls():
            if call.id not in self.live:
                continue
            head = self.node_of(call.id)
            for producer in call.inputs:
                tail = self.node_of(producer)
                if tail == head:
                    continue
                shared = self._shared(head) or self._shared(tail)
                edge = (tail, head, producer if shared else "")
                if edge in seen:
                    continue
                seen.add(edge)
                edges.append((tail, head, producer))
                if len(edges) > self.max_edges:
                    raise LimitError(f"the diagram would have more than {self.max_edges} edges", self._where(),
                                     self._hint(), code="limit.diagram_edges")
        for tail, head, producer in edges:
            dot.edge(tail, head, escape(format_shape(self.tg.shape_of(producer))))

    def _shared(self, key: str) -> bool:
        decl = self.tg.modules.get(key)
        return decl is not None and decl.calls > 1

    def _outputs(self, dot: graphviz.Digraph) -> None:
        outs = self.tg.outputs
        modes = [("eval", outs["eval"])] if outs["eval"] == outs["train"] else list(outs.items())
        for mode, refs in modes:
            name = "output" if len(modes) == 1 else f"output ({mode})"
            shapes = ", ".join(format_shape(self.tg.shape_of(r)) for r in refs)
            dot.node(name, escape(f"{name}\n{shapes}"), shape="oval", fillcolor=COLOURS["io"])
            for ref in refs:
                dot.edge(self.node_of(ref), name, escape(format_shape(self.tg.shape_of(ref))),
                         style="dashed" if mode == "train" and len(modes) > 1 else "solid")


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def diagram(tg: TypedGraph, depth: int = 2, rankdir: str = "TB", max_nodes: int = MAX_NODES,
            max_edges: int = MAX_EDGES) -> graphviz.Digraph:
    """The graphviz Digraph of a typed graph (Jupyter displays it). Its source is deterministic. The node and
    edge caps are checked here, before any layout runs."""
    dot = Diagram(tg, depth, rankdir, max_nodes, max_edges).render()
    digest = hashlib.sha256(dot.source.encode("utf-8")).hexdigest()[:16]
    dot.graph_attr["id"] = f"archspec_dot_sha256_{digest}"
    return dot
