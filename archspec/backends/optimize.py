"""`archspec.optimize`: an inference build of a built module, with the same outputs.

It runs passes over the module's flat eval plan (`forwards.FlatPlan`, the typed list of calls), each asking
the primitives what they are (registry hooks), never their names, plus module rewrites:
- calls that pass their input through in eval mode (dropout, identity) are dropped;
- a norm that folds into the layer before it (BatchNorm after a conv or linear read by nothing else) is
  folded into that layer, and becomes nn.Identity;
- a module with a faster equivalent for inference is replaced by it (MixNet's equal-split GroupedConv2d
  becomes one grouped nn.Conv2d; an MDConv becomes one zero-padded depthwise conv where a measurement at the
  spec's input shape says that is faster);
- weights and activations switch to the channels-last memory layout, where a measurement of the
  whole network at its input shape says that is faster (it usually is with oneDNN on CPU).
The result runs the eval graph in both modes (it is for inference) and keeps the module tree's names. Its
root forward is one flat program that calls the leaf modules directly (the dropped and folded calls are gone
from it), so hooks on composite blocks do not fire in an optimized build; the blocks' own forwards still work.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter

import torch
from torch import nn

from archspec.backends.forwards import FlatPlan, Forward, PlanStep, RootProgram, Step, renumbered
from archspec.backends.torch_builder import ArchspecModel, with_program
from archspec.graph.ir import INPUT
from archspec.ops import REGISTRY

CHOICES = ("auto", "always", "never")
Steps = tuple[PlanStep, ...]


def optimize(model: ArchspecModel, mdconv: str = "auto", channels_last: str = "auto") -> ArchspecModel:
    """Return an optimized copy of `model` (in eval mode, with its current weights).

    `mdconv` and `channels_last`: "auto" (measure at the spec's input shape), "always" or "never". `mdconv`
    governs every replacement that needs a measurement (`Primitive.fuse_needs_measurement`).
    """
    if not isinstance(model, ArchspecModel):
        raise TypeError("optimize() takes a module built by archspec")
    if mdconv not in CHOICES or channels_last not in CHOICES:
        raise ValueError(f"mdconv and channels_last take one of {CHOICES}")
    fast = copy.deepcopy(model).eval()
    plan: FlatPlan = fast._plan
    steps, outputs = plan.steps["eval"], plan.outputs["eval"]
    with torch.no_grad():
        steps, outputs = _drop_passthrough(steps, outputs)
        steps = _fuse_modules(fast, steps, mdconv)
        steps, outputs = _fold_norms(fast, steps, outputs)
    fast._plan = FlatPlan({"train": steps, "eval": steps}, {"train": outputs, "eval": outputs}, plan.input_shape)
    _compile_flat(fast)
    if channels_last != "never" and len(plan.input_shape) == 3:
        _use_channels_last(fast, channels_last == "always")
    return fast.eval()


def _compile_flat(model: ArchspecModel) -> None:
    """One flat program from the rewritten eval plan, for both modes.

    Each leaf it calls is bound under one flat alias in the instance's __dict__ (not registered, so the module
    tree and state_dict are unchanged): `self._archspec_m_layer1_0_conv1(x)` is one dict lookup, where the nested
    path costs one nn.Module.__getattr__ per level (measured: 3-4% of a small OSNet's forward at batch 1)."""
    plan: FlatPlan = model._plan
    aliases = _flat_aliases([s.module for s in plan.steps["eval"] if s.module is not None])
    steps = tuple(Step(s.id, s.op, aliases.get(s.module), s.args, s.inputs, s.inplace) for s in plan.steps["eval"])
    flat = renumbered(Forward((INPUT,), steps, plan.outputs["eval"], plan.channels_last))
    for key in [k for k in model.__dict__ if k.startswith(_ALIAS)]:
        del model.__dict__[key]
    model.__dict__.update({alias: model.get_submodule(path) for path, alias in aliases.items()})
    with_program(model, RootProgram(flat, flat))


_ALIAS = "_archspec_m_"


def _flat_aliases(paths: list[str]) -> dict[str, str]:
    """Module path -> a unique identifier (`layer1.0.conv1` -> `_archspec_m_layer1_0_conv1`)."""
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for path in paths:
        if path in aliases:
            continue
        alias = base = _ALIAS + path.replace(".", "_")
        k = 1
        while alias in taken:
            k += 1
            alias = f"{base}_{k}"
        aliases[path] = alias
        taken.add(alias)
    return aliases


def _use_channels_last(model: ArchspecModel, always: bool) -> None:
    plain = copy.deepcopy(model) if not always else None
    model.to(memory_format=torch.channels_last)
    model._plan = dataclasses.replace(model._plan, channels_last=True)
    _compile_flat(model)
    if plain is not None and not _faster(model, plain, model._plan.input_shape, repeats=7):
        plain_state = plain.state_dict()
        model.load_state_dict(plain_state)
        model.to(memory_format=torch.contiguous_format)
        model._plan = dataclasses.replace(model._plan, channels_last=False)
        _compile_flat(model)


def _rewire(steps: Steps, outputs: tuple[str, ...], removed: dict[str, str]) -> tuple[Steps, tuple[str, ...]]:
    """Drop the steps in `removed` (id -> the id that replaces it) and point readers at the replacement."""
    def resolve(ref: str) -> str:
        while ref in removed:
            ref = removed[ref]
        return ref

    kept = tuple(dataclasses.replace(step, inputs=tuple(resolve(i) for i in step.inputs))
                 for step in steps if step.id not in removed)
    return kept, tuple(resolve(o) for o in outputs)


def _drop_passthrough(steps: Steps, outputs: tuple[str, ...]) -> tuple[Steps, tuple[str, ...]]:
    removed = {s.id: s.inputs[0] for s in steps if REGISTRY[s.op].passthrough_in_eval}
    return _rewire(steps, outputs, removed)


def _uses(steps: Steps, outputs: tuple[str, ...]) -> Counter:
    uses: Counter = Counter(outputs)
    for step in steps:
        uses.update(step.inputs)
    return uses


def _module_calls(steps: Steps) -> Counter:
    return Counter(s.module for s in steps if s.module is not None)


def _fold_norms(model: nn.Module, steps: Steps, outputs: tuple[str, ...]) -> tuple[Steps, tuple[str, ...]]:
    by_id = {s.id: s for s in steps}
    uses, calls = _uses(steps, outputs), _module_calls(steps)
    removed = {}
    for step in steps:
        producer = by_id.get(step.inputs[0]) if REGISTRY[step.op].folds_into_previous else None
        if producer is None or not REGISTRY[producer.op].absorbs_norm or uses[producer.id] != 1:
            continue
        if step.module is None or calls[producer.module] != 1 or calls[step.module] != 1:
            continue
        _fold_into(model.get_submodule(producer.module), model.get_submodule(step.module))
        _replace(model, step.module, nn.Identity())
        removed[step.id] = producer.id
    return _rewire(steps, outputs, removed)


def _fold_into(layer: nn.Module, norm: nn.Module) -> None:
    """W' = W * g / sqrt(var + eps) per output channel, b' = (b - mean) * g / sqrt(var + eps) + beta."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    old_bias = layer.bias if layer.bias is not None else torch.zeros_like(norm.running_mean)
    layer.weight.copy_(layer.weight * scale.reshape(-1, *([1] * (layer.weight.dim() - 1))))
    layer.bias = nn.Parameter(old_bias * scale + shift)


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def _fuse_modules(model: nn.Module, steps: Steps, mdconv: str) -> Steps:
    """Replace each module called once by the faster equivalent its primitive offers, if any."""
    calls = _module_calls(steps)
    result = []
    for step in steps:
        primitive = REGISTRY[step.op]
        fused = primitive.fused(model.get_submodule(step.module)) \
            if step.module is not None and calls[step.module] == 1 else None
        if fused is not None and primitive.fuse_needs_measurement:
            if mdconv == "never" or (mdconv == "auto" and
                                     not _faster(fused[0], model.get_submodule(step.module), step.in_shapes[0])):
                fused = None
        if fused is not None:
            _replace(model, step.module, fused[0])
            step = dataclasses.replace(step, op=fused[1])
        result.append(step)
    return tuple(result)


def _faster(candidate: nn.Module, current: nn.Module, shape: tuple, repeats: int = 15) -> bool:
    from archspec.timing import interleaved_medians

    new, old = interleaved_medians([candidate, current], torch.randn(1, *shape), repeats=repeats, warmup=2)
    return new < old
