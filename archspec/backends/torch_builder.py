"""torch backend: typed graph -> a plain nn.Module.

The module tree is built in spec order (or a block's `order:`), so state_dict keys and their order
follow the spec. Every composite block instance is an instance of a class named after its block, whose
forward is generated from its own subgraph (`forwards.py` decides what each module runs); sequences are
`nn.Sequential`. The root's forward calls its children as hand-written code does, with one program per
mode when the outputs differ. Each distinct program is compiled once, so nothing interprets the graph
at run time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, ClassVar

import torch
from torch import nn

from archspec.backends.codegen import compile_method, forward_source
from archspec.backends.forwards import FlatPlan, Forward, ForwardPlanner, RootProgram
from archspec.backends.init import apply_rules
from archspec.backends.memory import check_memory
from archspec.errors import Location, SpecError
from archspec.graph.ir import INPUT, TypedGraph
from archspec.ops import REGISTRY

# Generated classes by (base, name, program digest). Bounded, so that a process that builds thousands of
# different models (a design-space search) does not keep every class: an evicted class stays valid for the
# models that have it, and the next model of that program compiles it again.
_CLASSES: dict[tuple[str, str, str], type] = {}
MAX_CLASSES = 4096


class ArchspecBlock(nn.Module):
    """Base of the generated block classes: one subclass per block type and forward program, named after
    the block (`type(model.layer1[0]).__name__ == "Bottleneck"`), whose `forward` is compiled from it."""

    _archspec_program: ClassVar[Forward]

    @classmethod
    def _archspec_make(cls, name: str, program: Forward) -> type:
        return type(name, (cls,), {"_archspec_program": program, "__module__": __name__, "__qualname__": name,
                                   "forward": compile_method(program, name)})

    def __reduce__(self):
        # The class exists only in this process: pickle and deepcopy rebuild it from its program.
        return _restore, (type(self).__bases__[0].__name__, type(self).__name__, self._archspec_program), \
            dict(self.__dict__)


class GraphRef:
    """The typed graph a model was built from (`archspec.summary(model)` reads it). Copies of the model share
    it: the graph is never changed after lowering, so `copy.deepcopy` (used by `archspec.optimize`) keeps it."""

    def __init__(self, graph: TypedGraph):
        self.graph = graph

    def __deepcopy__(self, memo: dict) -> GraphRef:
        return self


class ArchspecModel(ArchspecBlock):
    """Base of the built networks. The generated subclass is named after the spec's `class_name`; its forward
    runs the train or eval program (their outputs may differ) through the children's own forwards."""

    _archspec_program: ClassVar[RootProgram]

    def __init__(self, name: str, plan: FlatPlan | None):
        super().__init__()
        self.arch_name = name
        self._plan = plan  # the flat call list of each mode, which `archspec.optimize` rewrites

    @classmethod
    def _archspec_make(cls, name: str, program: RootProgram) -> type:
        methods: dict[str, Any] = {"_archspec_program": program, "__module__": __name__, "__qualname__": name}
        if program.same_in_both_modes:
            methods["forward"] = compile_method(program.eval, name)
        else:
            methods["_archspec_forward_train"] = compile_method(program.train, name, "_archspec_forward_train")
            methods["_archspec_forward_eval"] = compile_method(program.eval, name, "_archspec_forward_eval")
            methods["forward"] = _forward_by_mode
        return type(name, (cls,), methods)

    def generated_code(self, mode: str = "eval") -> str:
        """The source of the forward that runs in `mode`."""
        program = self._archspec_program
        return forward_source(program.eval if mode == "eval" else program.train)[0]


def _forward_by_mode(self, x: torch.Tensor) -> Any:
    return self._archspec_forward_train(x) if self.training else self._archspec_forward_eval(x)


_BASES = {cls.__name__: cls for cls in (ArchspecBlock, ArchspecModel)}


def generated_class(base: type, name: str, program: Forward | RootProgram) -> type:
    """The class for (base, name, program), made once per process (while it stays among the last MAX_CLASSES)."""
    key = (base.__name__, name, hashlib.sha256(program.key().encode()).hexdigest())
    cls = _CLASSES.get(key)
    if cls is None or cls._archspec_program != program:  # a digest collision would be caught here
        if len(_CLASSES) >= MAX_CLASSES:
            del _CLASSES[next(iter(_CLASSES))]
        cls = _CLASSES[key] = base._archspec_make(name, program)
    return cls


def _restore(base: str, name: str, program: Forward | RootProgram) -> nn.Module:
    cls = generated_class(_BASES[base], name, program)
    return cls.__new__(cls)


def with_program(model: ArchspecModel, program: RootProgram) -> None:
    """Give a built model another root program (`archspec.optimize` runs a flat one)."""
    model.__class__ = generated_class(ArchspecModel, type(model).__name__, program)


def inplace_calls(tg: TypedGraph) -> set[str]:
    """Calls that may overwrite their first input: it is read nowhere else and nothing needs it later."""
    uses: Counter = Counter()
    for call in tg.calls():
        uses.update(call.inputs)
    for refs in tg.outputs.values():
        uses.update(set(refs))
    safe = set()
    for call in tg.calls():
        first = call.inputs[0] if call.inputs else INPUT
        if first == INPUT or not REGISTRY[call.op].supports_inplace or uses[first] != 1:
            continue
        producer = tg.call(first)
        if REGISTRY[producer.op].mutable_output:
            safe.add(call.id)
    return safe


def _inplace_modules(tg: TypedGraph, safe: set[str]) -> set[str]:
    """A module built in place must be safe at every one of its calls."""
    verdict: dict[str, bool] = {}
    for call in tg.calls():
        if call.module is not None:
            verdict[call.module] = verdict.get(call.module, True) and call.id in safe
    return {m for m, ok in verdict.items() if ok}


def build_module(tg: TypedGraph, seed: int | None = None, meta: bool = False) -> ArchspecModel:
    """Build the nn.Module for a typed graph: torch's default init, then the spec's `init:` rules.

    With `seed`, the weights depend only on the spec and the seed (the global RNG is left untouched).
    With `meta`, tensors live on torch's meta device: shapes only, nothing allocated.
    """
    if meta:
        with torch.device("meta"):
            return _build(tg)
    check_memory(4 * tg.total_params, f"{tg.name}'s {tg.total_params:,} float32 params",
                 Location(tg.file, 1, 1))
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _build(tg)
    return _build(tg)


def _build(tg: TypedGraph) -> ArchspecModel:
    safe = inplace_calls(tg)
    inplace_modules = _inplace_modules(tg, safe)
    planner = ForwardPlanner(tg, safe)
    root = generated_class(ArchspecModel, tg.class_name or tg.name, planner.root_program())
    model = root(tg.name, FlatPlan.of(tg, safe))
    model._archspec_graph = GraphRef(tg)  # `_archspec` names cannot collide with spec node names
    for decl in tg.modules.values():
        parent_path, _, attr = decl.path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        if decl.kind == "container":
            child = _container(decl.type, decl.path, planner)
        else:
            child = REGISTRY[decl.type].build(decl.args, decl.in_shapes, decl.path in inplace_modules)
        if hasattr(parent, attr) and attr not in parent._modules:  # validate refuses the names torch owns
            raise SpecError(f"{attr!r} is an attribute of {type(parent).__name__} in this torch, so no module "
                            "can be registered under it", decl.where, "pick another name",
                            code="schema.reserved_name")
        parent.add_module(attr, child)
    apply_rules(model, tg)
    return model


def _container(kind: str, path: str, planner: ForwardPlanner) -> nn.Module:
    if kind == "Sequential":
        return nn.Sequential()
    return generated_class(ArchspecBlock, kind, planner.block_forward(path))()
