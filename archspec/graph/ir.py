"""The typed graph IR: one networkx node per primitive call, plus the module tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from archspec.errors import Location

INPUT = "input"


@dataclass
class Call:
    """One primitive call. `module` is the state_dict prefix of the module it runs (None: a function)."""

    id: str
    op: str
    args: Any
    module: str | None
    inputs: list[str]
    in_shapes: list[tuple]
    out_shape: tuple
    param_count: int
    macs: int
    where: Location
    containers: tuple[int, ...] = ()  # the container invocations (tokens) it runs inside, outermost first


@dataclass
class ModuleDecl:
    """A module in the tree. Leaves run a primitive; containers are sequences or composite blocks."""

    path: str
    kind: str  # "leaf" or "container"
    type: str  # primitive name, composite block name, or "Sequential"
    args: Any = None
    in_shapes: list[tuple] = field(default_factory=list)
    where: Location | None = None
    calls: int = 0
    param_count: int = 0
    held: bool = False  # `hold: true`: made (its weights load) but never called


@dataclass
class Invocation:
    """One call of a container module: which inputs it reads and which call gives its output."""

    token: int
    path: str
    type: str
    inputs: list[str]
    output: str = ""


@dataclass(frozen=True)
class ResolvedInit:
    """An `init:` rule as lowering resolved it: the leaf modules it matches (in module order), and for each of
    "weight" and "bias" the scheme and its bound, checked arguments. The backend applies it as it is."""

    paths: tuple[str, ...]
    schemes: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]  # (tensor, scheme, ((arg, value), ...))


@dataclass
class TypedGraph:
    name: str
    input_shape: tuple
    graph: nx.DiGraph
    modules: dict[str, ModuleDecl]
    outputs: dict[str, list[str]]  # mode ("train", "eval") -> call ids
    file: str = ""
    spec_params: dict[str, Any] = field(default_factory=dict)  # the spec's params, as overridden
    init: list[ResolvedInit] = field(default_factory=list)
    invocations: dict[int, Invocation] = field(default_factory=dict)
    class_name: str | None = None  # the spec's `class_name`: the built model's class
    weights: dict[str, Any] = field(default_factory=dict)  # the spec's `weights:` (tag -> WeightsEntry)
    weights_source: Any = None  # the Located file that declared them, for located download errors

    def call(self, node_id: str) -> Call:
        return self.graph.nodes[node_id]["call"]

    def calls(self) -> list[Call]:
        # Insertion order is the spec's order, and a topological one: a node reads only earlier nodes.
        return [data["call"] for n, data in self.graph.nodes(data=True) if n != INPUT]

    @property
    def total_params(self) -> int:
        """From the module table, so modules held outside the forward path count too."""
        return sum(m.param_count for m in self.modules.values())

    def total_macs(self, mode: str = "eval") -> int:
        live = self.live(mode)
        return sum(c.macs for c in self.calls() if c.id in live)

    def live(self, mode: str) -> set[str]:
        """Calls that the outputs of `mode` depend on."""
        keep: set[str] = set()
        for out in self.outputs[mode]:
            keep |= nx.ancestors(self.graph, out) | {out}
        keep.discard(INPUT)
        return keep

    def output_shapes(self, mode: str = "eval") -> list[tuple]:
        return [self.shape_of(o) for o in self.outputs[mode]]

    def shape_of(self, node_id: str) -> tuple:
        return self.input_shape if node_id == INPUT else self.call(node_id).out_shape
