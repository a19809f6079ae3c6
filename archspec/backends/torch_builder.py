"""torch backend: typed graph -> a plain nn.Module.

The module tree is built in spec order, so state_dict keys and their order follow the spec.
The forward is generated with torch.fx from the graph, once per mode (train/eval outputs may
differ), so nothing interprets the graph at run time.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import fx, nn

from archspec.backends.init import apply_rules
from archspec.errors import Location, SpecError
from archspec.graph.ir import INPUT, TypedGraph
from archspec.graph.limits import check_memory
from archspec.ops import REGISTRY


class Block(nn.Module):
    """A composite block instance: a container that prints with the block's name."""

    def __init__(self, block: str):
        super().__init__()
        # A private name: a block's children may be called anything torch accepts, `block` included.
        self._archspec_block = block

    def _get_name(self) -> str:
        return self._archspec_block


class ArchspecModel(nn.Module):
    """The built network. Its forward runs the generated code for the current mode."""

    def __init__(self, name: str, plan: dict):
        super().__init__()
        self.arch_name = name
        self._plan = plan

    def _get_name(self) -> str:
        return self.arch_name

    def forward(self, x: torch.Tensor) -> Any:
        return self._train_forward(x) if self.training else self._eval_forward(x)

    def compile_forward(self) -> None:
        """(Re)generate the forward functions from the plan."""
        fns = {}
        for mode in ("train", "eval"):
            flat = _flat_names(self._plan[mode])
            graph = _fx_graph(self._plan[mode], self._plan["outputs"][mode], self._plan.get("channels_last", False),
                              flat)
            # One flat attribute per module: the generated code does one lookup per call, where nested paths
            # (`getattr(self.conv2, "0").gate.fc1`) cost one nn.Module.__getattr__ per level.
            root = {name: self.get_submodule(path) for path, name in flat.items()}
            module = fx.GraphModule(root, graph, class_name=f"{self.arch_name}_{mode}")
            fns[mode] = module.forward
        self.__dict__["_train_forward"] = fns["train"]
        self.__dict__["_eval_forward"] = fns["eval"]
        self.__dict__["_graph_modules"] = {m: f.__self__ for m, f in fns.items()}

    def generated_code(self, mode: str = "eval") -> str:
        return self.__dict__["_graph_modules"][mode].code

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for key in ("_train_forward", "_eval_forward", "_graph_modules"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.compile_forward()


def _flat_names(steps: list[dict]) -> dict[str, str]:
    """Module path -> a unique identifier (`layer1.0.conv1` -> `layer1_0_conv1`)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for step in steps:
        path = step["module"]
        if path is None or path in names:
            continue
        name = base = "m_" + path.replace(".", "_")
        k = 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        names[path] = name
        taken.add(name)
    return names


def _fx_graph(steps: list[dict], outputs: list[str], channels_last: bool = False,
              flat: dict[str, str] | None = None) -> fx.Graph:
    graph = fx.Graph()
    values: dict[str, fx.Node] = {INPUT: graph.placeholder("x")}
    if channels_last:  # an optimized build: convs run on NHWC tensors, outputs go back to NCHW
        values[INPUT] = graph.call_method("contiguous", (values[INPUT],), {"memory_format": torch.channels_last})
    for step in steps:
        inputs = [values[i] for i in step["inputs"]]
        if step["module"] is not None:
            target = flat[step["module"]] if flat else step["module"]
            values[step["id"]] = graph.call_module(target, tuple(inputs))
        else:
            values[step["id"]] = REGISTRY[step["op"]].emit(graph, step["args"], inputs, step["inplace"])
    result = [values[o] for o in outputs]
    if channels_last:
        result = [graph.call_method("contiguous", (r,)) for r in result]
    graph.output(result[0] if len(result) == 1 else tuple(result))
    graph.lint()
    return graph


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


def _plan(tg: TypedGraph, safe: set[str]) -> dict:
    plan: dict[str, Any] = {"outputs": tg.outputs, "input_shape": tg.input_shape, "channels_last": False}
    for mode in ("train", "eval"):
        live = tg.live(mode)
        plan[mode] = [{"id": c.id, "op": c.op, "args": c.args, "module": c.module, "inputs": c.inputs,
                       "inplace": c.id in safe, "in_shapes": c.in_shapes, "out_shape": c.out_shape}
                      for c in tg.calls() if c.id in live]
    return plan


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
    model = ArchspecModel(tg.name, _plan(tg, safe))
    for decl in tg.modules.values():
        parent_path, _, attr = decl.path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        if decl.kind == "container":
            child = nn.Sequential() if decl.type == "Sequential" else Block(decl.type)
        else:
            child = REGISTRY[decl.type].build(decl.args, decl.in_shapes, decl.path in inplace_modules)
        if hasattr(parent, attr) and attr not in parent._modules:  # validate refuses the names torch owns
            raise SpecError(f"{attr!r} is an attribute of {type(parent).__name__} in this torch, so no module "
                            "can be registered under it", decl.where, "pick another name",
                            code="schema.reserved_name")
        parent.add_module(attr, child)
    apply_rules(model, tg)
    model.compile_forward()
    return model
