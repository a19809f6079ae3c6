"""Lowering: expand tables, repeats, sequences, conditions and composite blocks into a flat graph
of primitive calls, inferring shapes, params and MACs on the way (pure Python, no torch)."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
from pydantic import ValidationError

from archspec.errors import (
    ArchspecError,
    ErrorGroup,
    GraphError,
    LimitError,
    Location,
    ShapeError,
    SpecError,
    did_you_mean,
    short_repr,
)
from archspec.graph.analysis import check_dead_modules
from archspec.graph.binding import unknown_arg_errors
from archspec.graph.init_rules import resolve_init_rules
from archspec.graph.ir import INPUT, Call, Invocation, ModuleDecl, TypedGraph
from archspec.graph.limits import Limits, check_held, check_input
from archspec.graph.precheck import precheck
from archspec.ops import REGISTRY, Primitive
from archspec.ops.registry import format_shape
from archspec.source import Located
from archspec.spec import expr
from archspec.spec.loader import Spec
from archspec.spec.models import BlockDef, CallNode, OutputRef, SeqNode, UseNode
from archspec.spec.names import reserved_reason
from archspec.spec.params import check_value, coerce

MAX_BLOCK_DEPTH = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class Src:
    """Where a node came from: its file and path, and the chain of block calls that led there."""

    located: Located
    path: tuple
    via: tuple[str, ...] = ()

    def at(self, *parts, key: bool = False) -> Location:
        return self.located.loc(self.path + parts, prefer_key=key)

    def child(self, *parts) -> Src:
        return Src(self.located, self.path + parts, self.via)

    def hint(self, text: str = "") -> str:
        chain = "; ".join(f"inside {v}" for v in reversed(self.via))
        return "; ".join(p for p in (text, chain) if p)


@dataclass
class LentName:
    """A name that an absent (`when: false`) node lends to its input; `read` once a reference used it. One
    object is shared by the scopes that copy the name, so a read anywhere counts."""

    read: bool = False


@dataclass(frozen=True)
class Recipe:
    """How to run a named node again (`call:`): the node, and the scope, place, row and forced args it had."""

    node: Any
    scope: Scope
    src: Src
    row: Row
    force: dict


@dataclass
class Scope:
    env: dict[str, Any]
    prefix: str  # module path prefix, "" or "layer1.0."
    names: dict[str, str] = field(default_factory=dict)  # local node name -> call id of its output
    recipes: dict[str, Recipe] = field(default_factory=dict)  # local name -> how to run it again
    reuse: bool = False  # re-running a shared module: check modules exist instead of creating them
    later: set = field(default_factory=set)  # names defined after the current node (forward references)
    trail: tuple[int, ...] = ()  # the container invocations this scope is inside, outermost first
    depth: int = 0
    # Name resolution (docs/spec-language.md, "Names"): names bound by nodes that exist here, and names
    # that an absent (`when: false`) node lends to its input.
    present: set = field(default_factory=set)
    absent: dict[str, LentName] = field(default_factory=dict)

    def nested(self, prefix: str, token: int) -> Scope:
        """The scope inside a sequence: it sees this scope's names, and binds its own."""
        return replace(self, prefix=prefix, names=dict(self.names), trail=self.trail + (token,),
                       present=set(), absent=dict(self.absent))


@dataclass(frozen=True)
class Row:
    """One table row's evaluated values, and where each column's value stands in the spec (for errors)."""

    values: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, tuple] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def without(self, key: str) -> Row:
        return Row({k: v for k, v in self.values.items() if k != key}, self.paths)

    def where(self, key: str) -> tuple:
        return self.paths[key]


NO_ROW = Row()


class SeqIndex:
    """Hands out the indices that name a sequence's items (`0`, `1`, ...), as nn.Sequential does."""

    def __init__(self) -> None:
        self.count = 0

    def take(self) -> str:
        self.count += 1
        return str(self.count - 1)


class Lowerer:
    def __init__(self, spec: Spec, limits: Limits):
        self.spec = spec
        self.limits = limits
        self.graph = nx.DiGraph()
        self.modules: dict[str, ModuleDecl] = {}
        self.paths: dict[str, str] = {}  # module/container path -> call id of its output
        self.called_again: set[str] = set()  # paths inside a module that `call:` runs more than once
        self.ids: dict[str, int] = {}
        self.param_count = 0  # params of the modules made so far
        self.activation_bytes = 4 * math.prod(spec.model.input)  # float32 tensors at batch 1, the input too
        self.work = limits.meter()  # every node visit counts, calls or not (limits.WorkMeter)
        self.invocations: dict[int, Invocation] = {}
        self.blocks = self._collect_blocks()

    # ---- blocks -----------------------------------------------------------------------------
    def _collect_blocks(self) -> dict[str, tuple[BlockDef, Located]]:
        from archspec.blocks import resolve_variants, shipped_blocks

        blocks = dict(shipped_blocks())
        local = {}
        for name, block in self.spec.model.blocks.items():
            where = self.spec.source.loc(("blocks", name), prefer_key=True)
            if name in blocks or name in REGISTRY:
                raise SpecError(f"block {name!r} is already defined by archspec", where,
                                "pick another name", code="schema.duplicate_block")
            if block.block != name:
                raise SpecError(f"block {name!r} says `block: {block.block}`", where,
                                "make the key and `block:` agree", code="schema.block_name")
            local[name] = (block, _Sub(self.spec.source, ("blocks", name)))
        return resolve_variants({**blocks, **local})

    def known_blocks(self) -> list[str]:
        return sorted(set(REGISTRY) | set(self.blocks))

    # ---- entry ------------------------------------------------------------------------------
    def run(self) -> TypedGraph:
        model = self.spec.model
        precheck(self.spec, self.blocks)  # reports all unknown blocks and args at once, when there are several
        src = Src(self.spec.source, ())
        self.work.estimate(self.spec, self.blocks, src.at("nodes"))  # refuses a multiplying spec up front
        self.graph.add_node(INPUT, shape=tuple(model.input))
        check_input(self.limits, tuple(model.input), src.at("input"))
        env = dict(self.spec.params)
        env["in_channels"] = model.input[0]
        env["in_shape"] = list(model.input)
        env.update(self._lets(model.let, env, src.child("let")))
        scope = Scope(env, "")
        scope.names[INPUT] = INPUT
        last = self.lower_list(model.nodes, scope, INPUT, src.child("nodes"), in_seq=None)
        self._reorder("", model.order, model.nodes, src.child("order"))
        outputs = self._outputs(model.outputs, scope, last, src)
        graph = TypedGraph(model.name, tuple(model.input), self.graph, self.modules, outputs,
                           self.spec.file, dict(self.spec.params), [], self.invocations,
                           model.class_name, dict(model.weights), self.spec.weights_source or self.spec.source)
        graph.init = resolve_init_rules(graph, list(model.init), self.spec.source)
        check_dead_modules(graph)
        return graph

    def _lets(self, lets: dict, env: dict, src: Src) -> dict:
        scope = dict(env)
        for name, value in lets.items():
            scope[name] = self.evaluate(value, scope, src.child(name))
        return {k: scope[k] for k in lets}

    # ---- node lists -------------------------------------------------------------------------
    def lower_list(self, nodes: list, scope: Scope, prev: str, src: Src, in_seq: SeqIndex | None) -> str:
        """Lower nodes in order; each reads the previous one unless it says `from:`.

        `in_seq` names the items by index when the list is a sequence.
        """
        later = {n.name for n in nodes if n.name}
        for i, node in enumerate(nodes):
            later.discard(node.name)
            scope.later = later
            prev = self.lower_tabled(node, scope, prev, src.child(i), in_seq)
        return prev

    def lower_tabled(self, node, scope: Scope, prev: str, src: Src, in_seq: SeqIndex | None) -> str:
        if node.table is None:
            return self.lower_repeated(node, scope, prev, src, in_seq, NO_ROW)
        table = node.table
        self._check_columns(node, scope, src)
        for r, row in enumerate(table.rows):
            rsrc = src.child("table", "rows", r)
            values = self._row(table.columns, row, rsrc)
            values = {k: self.evaluate(v, scope.env, rsrc, literal_ok=True) for k, v in values.items()}
            row_scope = replace(scope, env={**scope.env, **values})
            paths = {k: ("table", "rows", r, k if isinstance(row, dict) else table.columns.index(k))
                     for k in table.columns}
            plain = node.model_copy(update={"table": None})
            prev = self.lower_repeated(plain, row_scope, prev, src, in_seq, Row(values, paths))
        return prev

    def _check_columns(self, node, scope: Scope, src: Src) -> None:
        """Every column must do something: fill a param of the block the node calls, be read by one of the
        node's expressions (its `block:`, args, `when`, or items of its seq), or be `name`/`repeat`/
        `in_channels`. A column that does nothing is almost always a typo, or a param the node also sets."""
        fills: set[str] = set()
        if isinstance(node, CallNode):
            chosen = self._block_name(node, scope)
            if chosen in REGISTRY:
                fills = set(REGISTRY[chosen].Args.model_fields)
            elif chosen in self.blocks:
                fills = set(self.blocks[chosen][0].params)
            fills -= set(node.args)
        text = " ".join(_strings(node.model_dump(exclude={"table"}, by_alias=True)))
        for i, column in enumerate(node.table.columns):
            if column in ("name", "repeat", "in_channels") or column in fills or re.search(rf"\b{column}\b", text):
                continue
            set_here = column in getattr(node, "args", {})
            raise SpecError(f"column {column!r} is never used" + (f": the node sets `{column}` itself" if set_here
                            else ": no param of the block has that name and no expression of the node reads it"),
                            src.at("table", "columns", i), src.hint("use it (`out: c`), or drop the column"),
                            code="table.unused_column")

    def _row(self, columns: list[str], row, src: Src) -> dict:
        if isinstance(row, dict):
            unknown = [k for k in row if k not in columns]
            if unknown:
                raise SpecError(f"row has unknown column {unknown[0]!r}", src.at(unknown[0], key=True),
                                did_you_mean(unknown[0], columns), code="table.unknown_column")
            return dict(row)
        if len(row) != len(columns):
            raise SpecError(f"row has {len(row)} values for {len(columns)} columns ({', '.join(columns)})",
                            src.at(), "give one value per column, or write the row as a mapping",
                            code="table.row_length")
        return dict(zip(columns, row))

    def lower_repeated(self, node, scope: Scope, prev: str, src: Src, in_seq: SeqIndex | None,
                       row: Row) -> str:
        if not self._when(node, scope, src):
            self._absent(node, scope, prev, src, row)
            return prev  # the node does not exist: the next one reads what this one would have followed
        name = node.name or self._row_name(row, src)
        repeat = node.repeat if node.repeat is not None else row.get("repeat")
        count = 1 if repeat is None else self.evaluate(repeat, scope.env, src.child("repeat"), want=int)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SpecError(f"repeat must be a positive integer, got {short_repr(count)}",
                            src.at("repeat"), code="schema.repeat")
        self.limits.check_repeat(count, src.at("repeat"))
        inputs = self._inputs(node, scope, prev, src)
        if repeat is None:
            return self._lower_one(node, scope, inputs, src, in_seq, name, row)
        if in_seq is None:  # a named repeat elsewhere becomes its own indexed sequence
            if name is None:
                raise SpecError("a repeated node outside a seq needs a name", src.at(),
                                "add `name:`, or put it inside a `seq`", code="graph.unnamed")
            path = self._container(scope, name, "Sequential", src)
            token = self._invoke(path, "Sequential", inputs[:1])
            inner = scope.nested(path + ".", token)
            inner_row = row.without("name")  # the name went to the sequence
            out = self._repeat(node.model_copy(update={"name": None}), inner, inputs, src, SeqIndex(), count,
                               inner_row)
            self.invocations[token].output = out
            return self._bind(scope, name, out, src, path)
        return self._repeat(node, scope, inputs, src, in_seq, count, row)

    def _row_name(self, row: Row, src: Src) -> str | None:
        name = row.get("name")
        if name is None:
            return None
        where = src.at(*row.where("name"))
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise SpecError(f"a row's name must be an identifier, got {short_repr(name)}", where,
                            "letters, digits and _, not starting with a digit", code="table.bad_name")
        reason = reserved_reason(name)
        if reason is not None:
            raise SpecError(f"{reason}; pick another name", where, src.hint(), code="schema.reserved_name")
        return name

    def _repeat(self, node, scope: Scope, inputs: list[str], src: Src, counter: SeqIndex, count: int,
                row: Row) -> str:
        before = self.work.used
        out = self._lower_one(node, scope, inputs, src, counter, None, row)
        self.work.predict(self.work.used - before, count - 1, src)
        # Later repeats read the one before: stride 1 (see docs), and a stated in_channels was the first's.
        node = node.model_copy(update={"in_channels": None}) if getattr(node, "in_channels", None) else node
        row = row.without("in_channels")
        for _ in range(count - 1):
            out = self._lower_one(node, scope, [out], src, counter, None, row, {"stride": 1})
        return out

    def _absent(self, node, scope: Scope, prev: str, src: Src, row: Row) -> None:
        """A node whose `when` is false lends its name to its (first) input, unless a node of that name
        exists here: then the name stays that node's."""
        self.work.step(src)
        inputs = self._inputs(node, scope, prev, src)
        name = node.name or self._row_name(row, src)
        if name and name not in scope.present:
            scope.names[name] = inputs[0]
            scope.absent[name] = LentName()

    def _when(self, node, scope: Scope, src: Src) -> bool:
        if node.when is None:
            return True
        value = self.evaluate(node.when, scope.env, src.child("when"))
        if not isinstance(value, bool):
            raise SpecError(f"`when` must be true or false, got {short_repr(value)}", src.at("when"),
                            code="schema.when")
        return value

    def _inputs(self, node, scope: Scope, prev: str, src: Src) -> list[str]:
        refs = node.from_
        if refs is None:
            return [prev]
        refs = [refs] if isinstance(refs, str) else refs
        return [self._ref(r, scope, src.child("from") if isinstance(node.from_, str) else src.child("from", i))
                for i, r in enumerate(refs)]

    def _ref(self, ref: str, scope: Scope, src: Src) -> str:
        if ref in scope.names:
            read = scope.absent.get(ref)
            if read is not None:
                read.read = True
            return scope.names[ref]
        for full in (scope.prefix + ref, ref):  # relative to this block or sequence, then from the top
            if full in self.called_again:
                raise GraphError(f"`from` refers to {ref!r}, inside a module that `call:` runs more than once, "
                                 "so it has one value per call", src.at(),
                                 src.hint("read the outputs of the calls instead"), code="graph.ambiguous_tap")
            if full in self.paths:
                return self.paths[full]
        if ref in scope.later:
            raise GraphError(f"`from` refers to {ref!r}, which is defined after this node: references point "
                             "backwards, so this would be a cycle", src.at(),
                             src.hint("move the node after the one it reads"), code="graph.cycle")
        known = list(scope.names)
        raise GraphError(f"`from` refers to {ref!r}, which is not defined before this node", src.at(),
                         src.hint(did_you_mean(ref, known) or f"known here: {', '.join(known[-8:])}"),
                         code="graph.dangling_ref")

    # ---- one node ---------------------------------------------------------------------------
    def _lower_one(self, node, scope: Scope, inputs: list[str], src: Src, in_seq: SeqIndex | None,
                   name: str | None, row: Row, force: dict | None = None) -> str:
        self.work.step(src)
        if in_seq is not None:
            if "name" in row:
                raise SpecError("rows inside a seq are named by their index, so a `name` column would be ignored",
                                src.at(*row.where("name")),
                                src.hint("drop the `name` column, or move the table out of the seq"),
                                code="table.name_in_seq")
            if node.name is not None and not isinstance(node, UseNode):
                raise SpecError("items of a seq are named by their index", src.at("name", key=True),
                                "remove `name:`; refer to the item as SEQ.INDEX", code="graph.seq_item_named")
            if not isinstance(node, UseNode):  # a call makes no module, so it takes no index
                name = in_seq.take()
        if isinstance(node, SeqNode):
            out = self._lower_seq(node, scope, inputs, src, name)
        elif isinstance(node, UseNode):
            out = self._lower_use(node, scope, inputs, src)
            name = node.name
        else:
            out = self._lower_call(node, scope, inputs, src, name, row, force or {})
        if name is not None:
            self._bind(scope, name, out, src, None)
        return out

    def _bind(self, scope: Scope, name: str, out: str, src: Src, path: str | None) -> str:
        """Give `name` to a node that exists: at most one per scope (docs: "Names")."""
        if name in scope.present:
            raise GraphError(f"{name!r} is defined twice in this scope", src.at("name", key=True),
                             src.hint("give the node another name, or make the `when` conditions exclusive"),
                             code="graph.duplicate_name")
        read = scope.absent.pop(name, None)
        if read is not None and read.read:
            raise GraphError(f"{name!r} was read while only an absent node of that name stood before it (so it "
                             "meant that node's input), and this later node of the same name exists",
                             src.at("name", key=True),
                             src.hint("references point backwards: move this node before the reads, or rename"),
                             code="graph.ambiguous_name")
        scope.present.add(name)
        scope.names[name] = out
        if scope.reuse:  # a shared module running again: its inner values now exist once per call
            self.called_again.add(path or scope.prefix + name)
        self.paths[path or scope.prefix + name] = out
        return out

    def _lower_seq(self, node: SeqNode, scope: Scope, inputs: list[str], src: Src, name: str | None) -> str:
        if name is None:
            raise SpecError("a seq outside a seq needs a name", src.at(), "add `name:`", code="graph.unnamed")
        if len(inputs) != 1:
            raise GraphError("a seq takes one input", src.at("from"), code="graph.arity")
        path = self._container(scope, name, "Sequential", src)
        token = self._invoke(path, "Sequential", inputs)
        inner = scope.nested(path + ".", token)
        out = self.lower_list(node.seq, inner, inputs[0], src.child("seq"), in_seq=SeqIndex())
        self.invocations[token].output = out
        return out

    def _invoke(self, path: str, kind: str, inputs: list[str]) -> int:
        """Record one call of a container (a sequence or a composite block instance)."""
        token = len(self.invocations) + 1
        self.invocations[token] = Invocation(token, path, kind, list(inputs))
        return token

    def _container(self, scope: Scope, name: str, kind: str, src: Src, args: dict | None = None) -> str:
        path = scope.prefix + name
        if scope.reuse:
            self.modules[path].calls += 1
            return path
        if path in self.modules or path in self.paths:
            raise GraphError(f"{path!r} is defined twice", src.at(), "give the node another name",
                             code="graph.duplicate_name")
        self.modules[path] = ModuleDecl(path, "container", kind, args, where=src.at(), calls=1)
        return path

    def _lower_use(self, node: UseNode, scope: Scope, inputs: list[str], src: Src) -> str:
        recipe = scope.recipes.get(node.call)
        if recipe is None:
            raise GraphError(f"`call` names {node.call!r}, which is not a module defined before it here",
                             src.at("call"), src.hint(did_you_mean(node.call, scope.recipes)),
                             code="graph.dangling_ref")
        original = recipe.node
        if getattr(original, "hold", False):
            raise GraphError(f"`call` names {node.call!r}, a `hold` module, which the forward never runs",
                             src.at("call"), src.hint(f"drop `hold` from {node.call!r} to call it"),
                             code="graph.call_held")
        again = replace(recipe.scope, names=dict(scope.names), reuse=True)
        return self._lower_call(original, again, inputs, recipe.src, original.name, recipe.row, recipe.force,
                                caller=src)

    def _lower_call(self, node: CallNode, scope: Scope, inputs: list[str], src: Src, name: str | None,
                    row: Row, force: dict, caller: Src | None = None) -> str:
        if name is not None and name not in scope.recipes:  # a block run again (reuse) records its own too
            scope.recipes[name] = Recipe(node, scope, src, row, force)
        chosen = self._block_name(node, scope)
        if chosen != node.block:
            node = node.model_copy(update={"block": chosen})
        primitive = REGISTRY.get(node.block)
        if primitive is not None:
            return self._lower_primitive(primitive, node, scope, inputs, src, name, row, force, caller)
        if node.block in self.blocks:
            return self._lower_block(node, scope, inputs, src, name, row, force)
        raise SpecError(f"unknown block {node.block!r}", src.at("block"),
                        src.hint(did_you_mean(node.block, self.known_blocks())
                                 or "run `archspec blocks` to list them"), code="schema.unknown_block")

    def _block_name(self, node: CallNode, scope: Scope) -> str:
        """`block:` may name a str param, so that a param picks the block (`block: unit`)."""
        name = node.block
        if name in REGISTRY or name in self.blocks:
            return name
        value = scope.env.get(name)
        return value if isinstance(value, str) else name

    def _in_shapes(self, node: CallNode, scope: Scope, inputs: list[str], src: Src, row: Row) -> list[tuple]:
        if node.hold:
            if node.input_shape is None:
                raise SpecError("a `hold` module needs `input_shape`", src.at(), code="schema.hold_shape")
            shape = self.evaluate(node.input_shape, scope.env, src.child("input_shape"))
            if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise SpecError(f"input_shape must be positive integers, got {short_repr(shape)}",
                                src.at("input_shape"), code="schema.hold_shape")
            return [tuple(shape)]
        shapes = [self.shape(i) for i in inputs]
        stated = node.in_channels if node.in_channels is not None else row.get("in_channels")
        if stated is not None:
            key = ("in_channels",) if node.in_channels is not None else row.where("in_channels")
            want = self.evaluate(stated, scope.env, src.child(*key))
            if shapes[0][0] != want:
                raise ShapeError(f"in_channels is {want} but the input has {shapes[0][0]} channels "
                                 f"({format_shape(shapes[0])})", src.at(*key),
                                 src.hint("fix the row, or drop in_channels and let archspec infer it"),
                                 code="shape.in_channels")
        return shapes

    def _lower_primitive(self, primitive: Primitive, node: CallNode, scope: Scope, inputs: list[str],
                         src: Src, name: str | None, row: Row, force: dict, caller: Src | None) -> str:
        args = self._primitive_args(primitive, node, scope, src, row, force)
        shapes = self._in_shapes(node, scope, inputs, src, row)
        if not primitive.min_inputs <= len(shapes) <= primitive.max_inputs:
            want = primitive.min_inputs if primitive.min_inputs == primitive.max_inputs else \
                f"{primitive.min_inputs} to {primitive.max_inputs}"
            raise GraphError(f"{primitive.name} takes {want} inputs, got {len(shapes)}", src.at("from"),
                             src.hint(), code="graph.arity")
        try:
            out = primitive.infer(args, shapes)
        except ValueError as exc:
            where = caller or src
            raise ShapeError(str(exc), where.at("block"), where.hint(), code="shape.mismatch") from None
        indexed = name is not None and name.isdigit()
        if indexed and not primitive.has_module:
            raise SpecError(f"{primitive.name} has no module form, so it cannot be a seq item", src.at("block"),
                            src.hint("move it out of the seq"), code="graph.seq_item_function")
        # A primitive with both forms (activations) is a module when named, a function call when not.
        functional = primitive.stateless_function and not indexed and (name is None or not primitive.has_module)
        if name is None and not functional:
            raise SpecError(f"{primitive.name} makes a module, and outside a seq a module needs a name "
                            "(its attribute and state_dict prefix)", src.at(), src.hint("add `name:`"),
                            code="graph.unnamed")
        module = None if functional else scope.prefix + name
        params = primitive.count_params(args, shapes)
        if module is not None:
            params = self._module(module, primitive, args, shapes, scope, src, params)
        if node.hold:
            if module is None:
                raise SpecError(f"`hold` keeps a module, and {primitive.name} makes none here",
                                src.at("hold", key=True), src.hint("give the node a name, or drop `hold`"),
                                code="graph.hold_function")
            self.modules[module].held = True
            check_held(self.limits, len(self.graph), self.param_count, src.at("block"), self.activation_bytes)
            return inputs[0] if inputs else INPUT
        call_id = self._new_id(module or scope.prefix + (name or primitive.name))
        call = Call(call_id, primitive.name, args, module, list(inputs), shapes, tuple(out), params,
                    primitive.count_macs(args, shapes, out), (caller or src).at("block"), scope.trail)
        self.graph.add_node(call_id, call=call)
        for slot, producer in enumerate(inputs):
            self.graph.add_edge(producer, call_id, slot=slot)
        self.activation_bytes += 4 * math.prod(out)
        self.limits.check_graph(len(self.graph), self.param_count, call.where, self.activation_bytes)
        return call_id

    def _module(self, path: str, primitive: Primitive, args, shapes, scope: Scope, src: Src,
                params: int) -> int:
        existing = self.modules.get(path)
        if scope.reuse:
            if existing is None or existing.args != args:
                raise GraphError(f"shared module {path!r} is called with different args", src.at(),
                                 code="graph.shared_mismatch")
            if primitive.stateful and [s[0] for s in existing.in_shapes] != [s[0] for s in shapes]:
                raise ShapeError(f"shared module {path!r} built for {format_shape(existing.in_shapes[0])} "
                                 f"is called on {format_shape(shapes[0])}", src.at(), code="shape.shared")
            existing.calls += 1
            return 0
        if existing is not None or path in self.paths:
            raise GraphError(f"{path!r} is defined twice", src.at("name", key=True),
                             "give the node another name, or use `call:` to share a module",
                             code="graph.duplicate_name")
        self.modules[path] = ModuleDecl(path, "leaf", primitive.name, args, shapes, src.at(), 1, params)
        self.param_count += params
        return params

    def _new_id(self, base: str) -> str:
        count = self.ids.get(base, 0) + 1
        self.ids[base] = count
        return base if count == 1 else f"{base}@{count}"

    def _primitive_args(self, primitive: Primitive, node: CallNode, scope: Scope, src: Src, row: Row,
                        force: dict):
        fields = primitive.Args.model_fields
        raw = node.args
        for error in unknown_arg_errors(primitive.name, fields, raw, lambda key: src.at(key, key=True), src.hint):
            raise error
        values = {k: self.evaluate(v, scope.env, src.child(k), literal_ok=_accepts_str(primitive.Args, k))
                  for k, v in raw.items()}
        for key, value in row.values.items():  # table columns fill the params the node does not set
            if key in fields and key not in values:
                values[key] = value
        values.update({k: v for k, v in force.items() if k in fields})
        try:
            return primitive.Args.model_validate(values)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = err["loc"][0] if err["loc"] else None
            where = src.at(key) if key in raw else src.at("block")
            message = f"{primitive.name}.{key}: {err['msg']}" if key else f"{primitive.name}: {err['msg']}"
            if err["type"] == "missing":
                message = f"{primitive.name} needs param {key!r}"
            raise SpecError(f"{message} (got {short_repr(err.get('input'))})" if err["type"] != "missing"
                            else message, where, src.hint(), code=f"schema.{err['type']}") from None

    # ---- composite blocks -------------------------------------------------------------------
    def _lower_block(self, node: CallNode, scope: Scope, inputs: list[str], src: Src, name: str | None,
                     row: Row, force: dict) -> str:
        block, located = self.blocks[node.block]
        if node.hold:
            raise SpecError("`hold` makes one primitive module that the forward never calls; "
                            f"{node.block} is a composite block", src.at("hold", key=True),
                            src.hint("hold its primitives one by one, inside the block"), code="graph.hold_composite")
        if name is None:
            raise SpecError(f"a {node.block} block needs a name", src.at(), "add `name:`",
                            code="graph.unnamed")
        if scope.depth >= MAX_BLOCK_DEPTH:
            raise LimitError("blocks nest too deeply (recursive block?)", src.at("block"),
                             code="limit.block_depth")
        shapes = self._in_shapes(node, scope, inputs, src, row)
        env = self._block_params(block, node, scope, src, row, force)
        env["in_channels"] = shapes[0][0]
        env["in_shape"] = list(shapes[0])
        bsrc = Src(located, (), src.via + (f"{node.block} at {src.at()}",))
        env.update(self._lets(block.let, env, bsrc.child("let")))
        given = {k: v for k, v in env.items() if k in block.params and v != block.params[k].default}
        sequence = _sequence_body(block)
        path = self._container(scope, name, "Sequential" if sequence else block.block, src, given)
        token = self._invoke(path, block.block, inputs)
        inner = Scope(env, path + ".", reuse=scope.reuse, trail=scope.trail + (token,), depth=scope.depth + 1)
        inner.names[INPUT] = inputs[0]
        for i, ref in enumerate(inputs):
            inner.names[f"input{i}"] = ref
        if sequence is not None:  # a sequence block: its items are indexed right under the block's name
            if block.order is not None:
                raise SpecError("a sequence block's items run in their index order, so `order` cannot change it",
                                bsrc.at("order", key=True), bsrc.hint("drop `order`"), code="schema.order")
            last = self.lower_list(sequence.seq, inner, inputs[0], bsrc.child("nodes", 0, "seq"), in_seq=SeqIndex())
        else:
            last = self.lower_list(block.nodes, inner, inputs[0], bsrc.child("nodes"), in_seq=None)
            if not scope.reuse:
                self._reorder(path, block.order, block.nodes, bsrc.child("order"))
        out = last if block.output is None else self._ref(block.output, inner, bsrc.child("output"))
        self.invocations[token].output = out
        return out

    def _block_params(self, block: BlockDef, node: CallNode, scope: Scope, src: Src, row: Row,
                      force: dict) -> dict:
        raw = node.args
        for error in unknown_arg_errors(block.block, block.params, raw, lambda key: src.at(key, key=True), src.hint):
            raise error
        env: dict[str, Any] = {}
        for pname, decl in block.params.items():
            if pname in force:
                value = force[pname]
            elif pname in raw:
                value = self.evaluate(raw[pname], scope.env, src.child(pname), literal_ok=decl.type == "str")
            elif pname in row:
                value = row[pname]
            elif decl.default is not None:
                value = decl.default
            else:
                raise SpecError(f"{block.block} needs param {pname!r}", src.at("block"),
                                src.hint(f"add `{pname}: ...`"), code="schema.missing")
            problem = check_value(decl, value)
            if problem:
                where = src.at(pname) if pname in raw else src.at("block")
                raise SpecError(f"{block.block}.{pname}: {problem}", where, src.hint(), code="schema.param_type")
            env[pname] = coerce(decl, value)
        return env

    def _reorder(self, path: str, order: list[str] | None, nodes: list, src: Src) -> None:
        """Register the children of `path` in `order` (docs: "order"). The modules made under `path` are
        the last entries of the module table: they are taken off its end and put back in that order, so the
        rest of the table keeps its spec order and the cost is that of this block's own modules."""
        if not order:
            return
        declared = _declared_names(nodes)
        for i, name in enumerate(order):
            if name not in declared:
                raise SpecError(f"`order` lists {name!r}, which no node here is named", src.at(i),
                                src.hint(did_you_mean(name, sorted(declared)) or "list the names of this "
                                         "block's nodes"), code="schema.order")
            if order.index(name) != i:
                raise SpecError(f"`order` lists {name!r} twice", src.at(i), src.hint(), code="schema.order")
        prefix = path + "." if path else ""
        tail = []  # this block's modules: the last entries of the table
        for key in reversed(self.modules):
            if not key.startswith(prefix):
                break
            tail.append(key)
        mine = [(p, self.modules.pop(p)) for p in reversed(tail)]
        first_seen: dict[str, int] = {}
        for i, (p, _) in enumerate(mine):
            first_seen.setdefault(p[len(prefix):].split(".")[0], i)

        def rank(item: tuple) -> tuple[int, int]:
            child = item[0][len(prefix):].split(".")[0]
            return (0, order.index(child)) if child in order else (1, first_seen[child])

        self.modules.update(sorted(mine, key=rank))

    # ---- values -----------------------------------------------------------------------------
    def evaluate(self, value: Any, env: dict, src: Src, want: type | None = None, literal_ok: bool = False) -> Any:
        """Evaluate expression strings (recursively inside lists); other values pass through."""
        if isinstance(value, list):
            return [self.evaluate(v, env, src.child(i), literal_ok=literal_ok) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if literal_ok and value not in env and value.isidentifier():
            return value
        if _NUMBER.fullmatch(value.strip()):
            raise SpecError(f"the number {short_repr(value)} is quoted, so it is a string", src.at(),
                            src.hint("write it without quotes"), code="schema.quoted_number")
        try:
            return self.work.evaluate(value, env, src)  # memoised and counted (limits.WorkMeter)
        except expr.ExprError as exc:
            yaml11 = value.strip().lower() in ("yes", "no", "on", "off", "y", "n")
            hint = "YAML 1.2 reads yes/no/on/off as strings: write true or false" if yaml11 else ""
            raise SpecError(str(exc), src.at(), src.hint(hint), code="expr.invalid") from None

    def shape(self, node_id: str) -> tuple:
        return self.graph.nodes[node_id]["shape"] if node_id == INPUT else self.graph.nodes[node_id]["call"].out_shape

    # ---- outputs ----------------------------------------------------------------------------
    def _outputs(self, outputs, scope: Scope, last: str, src: Src) -> dict[str, list[str]]:
        if outputs is None:
            return {"train": [last], "eval": [last]}
        if hasattr(outputs, "train"):
            return {mode: self._output_list(getattr(outputs, mode), scope, src.child("outputs", mode))
                    for mode in ("train", "eval")}
        refs = self._output_list(outputs, scope, src.child("outputs"))
        return {"train": refs, "eval": refs}

    def _output_list(self, value, scope: Scope, src: Src) -> list[str]:
        items = [value] if isinstance(value, str) else value
        refs = []
        for i, item in enumerate(items):
            isrc = src if isinstance(value, str) else src.child(i)
            if isinstance(item, OutputRef):
                if not self._when(item, scope, isrc):
                    continue
                item, isrc = item.ref, isrc.child("ref")
            ref = self._ref(item, scope, isrc)
            if ref == INPUT:
                raise GraphError("an output must be a node, not the input", isrc.at(), code="graph.output")
            refs.append(ref)
        if not refs:
            raise GraphError("no outputs are left", src.at(), code="graph.no_outputs")
        return refs


def _declared_names(nodes: list) -> set[str]:
    """Names that nodes of a list may give to children: their `name`, or a table's literal name column."""
    names = {n.name for n in nodes if n.name}
    for node in nodes:
        if node.table is not None and "name" in node.table.columns:
            column = node.table.columns.index("name")
            names |= {row.get("name") if isinstance(row, dict) else row[column] for row in node.table.rows
                      if isinstance(row, dict) or len(row) > column}
    return {n for n in names if isinstance(n, str)}


def _strings(value) -> list[str]:
    """Every string inside a dumped node (its expressions, names and block names)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _sequence_body(block: BlockDef) -> SeqNode | None:
    """A block whose only node is an unnamed `seq` is itself an nn.Sequential (pytorch-ssd's base_net[14])."""
    only = block.nodes[0] if len(block.nodes) == 1 else None
    return only if isinstance(only, SeqNode) and only.name is None and only.when is None else None


@functools.cache
def _accepts_str(args_model: type, name: str) -> bool:
    """Whether a primitive's arg takes a string (a literal choice or a str), so a bare word is a value there.
    Cached per args model: `str()` of a typing annotation cost 40% of lowering (cProfile of osnet_x1_0)."""
    text = str(args_model.model_fields[name].annotation)
    return "Literal" in text or text == "<class 'str'>"


class _Sub(Located):
    """A view of a spec's `blocks.NAME` section that resolves paths relative to it."""

    def __init__(self, base: Located, prefix: tuple):
        super().__init__(base.data, base.file, base.values, base.keys)
        self.prefix = prefix

    def loc(self, path: tuple = (), prefer_key: bool = False) -> Location:
        return super().loc(self.prefix + tuple(path), prefer_key)


def lower(spec: Spec, limits: Limits | None = None) -> TypedGraph:
    """Spec -> typed graph. Raises ArchspecError subclasses with locations."""
    try:
        return Lowerer(spec, limits or Limits()).run()
    except RecursionError:
        raise LimitError("the spec nests too deeply", Location(spec.file, 1, 1), code="limit.depth") from None
    except ArchspecError as exc:
        if spec.declared_input is not None:
            _note_input_override(exc, spec)
        raise


INPUT_DEPENDENT = ("shape.", "limit.activations", "expr.")


def _note_input_override(exc: ArchspecError, spec: Spec) -> None:
    """A shape error under an overridden input says so: the spec may be fine at its declared input."""
    note = (f" (the input was overridden to {format_shape(tuple(spec.model.input))}; "
            f"the spec declares {format_shape(spec.declared_input)})")
    for error in exc.errors if isinstance(exc, ErrorGroup) else [exc]:
        if error.code.startswith(INPUT_DEPENDENT) and note not in error.message:
            error.message += note
    if isinstance(exc, ErrorGroup):
        exc.message = exc.errors[0].message

