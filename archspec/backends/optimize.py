"""`archspec.optimize`: an inference build of a built module, with the same outputs.

It rewrites the module's eval plan, the list of calls the forward is generated from:
- dropout and identity calls are dropped;
- a BatchNorm whose input is a conv or linear read by nothing else is folded into it;
- a GroupedConv2d whose groups are equal becomes one grouped nn.Conv2d (one group: a plain conv);
- a mixed depthwise conv (MDConv) becomes one depthwise conv with its smaller kernels zero-padded
  to the largest, where a measurement at the spec's input shape says that is faster;
- weights and activations switch to the channels-last memory layout, where a measurement of the
  whole network at its input shape says that is faster (it usually is with oneDNN on CPU).
The result runs the eval graph in both modes (it is for inference) and keeps the module tree's
names; folded BatchNorms become nn.Identity. Its root forward is one flat program that calls the leaf
modules directly (the dropped and folded calls are gone from it), so hooks on composite blocks do not
fire in an optimized build; the blocks' own forwards still work when called.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn

from archspec.backends.forwards import Forward, RootProgram, Step, renumbered
from archspec.backends.torch_builder import ArchspecModel, with_program
from archspec.graph.ir import INPUT
from archspec.ops._torch_modules import SplitConv

CHOICES = ("auto", "always", "never")


def optimize(model: ArchspecModel, mdconv: str = "auto", channels_last: str = "auto") -> ArchspecModel:
    """Return an optimized copy of `model` (in eval mode, with its current weights).

    `mdconv` and `channels_last`: "auto" (measure at the spec's input shape), "always" or "never".
    """
    if not isinstance(model, ArchspecModel):
        raise TypeError("optimize() takes a module built by archspec")
    if mdconv not in CHOICES or channels_last not in CHOICES:
        raise ValueError(f"mdconv and channels_last take one of {CHOICES}")
    fast = copy.deepcopy(model).eval()
    steps = [dict(s) for s in fast._plan["eval"]]
    outputs = list(fast._plan["outputs"]["eval"])
    with torch.no_grad():
        steps, outputs = _drop_passthrough(steps, outputs)
        _merge_split_convs(fast, steps, mdconv)
        steps, outputs = _fold_batchnorm(fast, steps, outputs)
    fast._plan = {**fast._plan, "train": steps, "eval": steps, "outputs": {"train": outputs, "eval": outputs}}
    _compile_flat(fast)
    if channels_last != "never" and len(fast._plan["input_shape"]) == 3:
        _use_channels_last(fast, channels_last == "always")
    return fast.eval()


def _compile_flat(model: ArchspecModel) -> None:
    """One flat program from the rewritten eval plan, for both modes.

    Each leaf it calls is bound under one flat alias in the instance's __dict__ (not registered, so the module
    tree and state_dict are unchanged): `self._archspec_m_layer1_0_conv1(x)` is one dict lookup, where the nested
    path costs one nn.Module.__getattr__ per level (measured: 3-4% of a small OSNet's forward at batch 1)."""
    plan = model._plan
    aliases = _flat_aliases([s["module"] for s in plan["eval"] if s["module"] is not None])
    steps = tuple(Step(s["id"], s["op"], aliases.get(s["module"]), s["args"], tuple(s["inputs"]), s["inplace"])
                  for s in plan["eval"])
    flat = renumbered(Forward((INPUT,), steps, tuple(plan["outputs"]["eval"]), plan["channels_last"]))
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
    model._plan = {**model._plan, "channels_last": True}
    _compile_flat(model)
    if plain is not None and not _faster(model, plain, model._plan["input_shape"], repeats=7):
        plain_state = plain.state_dict()
        model.load_state_dict(plain_state)
        model.to(memory_format=torch.contiguous_format)
        model._plan = {**model._plan, "channels_last": False}
        _compile_flat(model)


def _rewire(steps: list[dict], outputs: list[str], removed: dict[str, str]) -> tuple[list[dict], list[str]]:
    """Drop the steps in `removed` (id -> the id that replaces it) and point readers at the replacement."""
    def resolve(ref: str) -> str:
        while ref in removed:
            ref = removed[ref]
        return ref

    kept = []
    for step in steps:
        if step["id"] in removed:
            continue
        step["inputs"] = [resolve(i) for i in step["inputs"]]
        kept.append(step)
    return kept, [resolve(o) for o in outputs]


def _drop_passthrough(steps: list[dict], outputs: list[str]) -> tuple[list[dict], list[str]]:
    removed = {s["id"]: s["inputs"][0] for s in steps if s["op"] in ("dropout", "identity")}
    return _rewire(steps, outputs, removed)


def _uses(steps: list[dict], outputs: list[str]) -> Counter:
    uses: Counter = Counter(outputs)
    for step in steps:
        uses.update(step["inputs"])
    return uses


def _module_calls(steps: list[dict]) -> Counter:
    return Counter(s["module"] for s in steps if s["module"] is not None)


def _fold_batchnorm(model: nn.Module, steps: list[dict], outputs: list[str]) -> tuple[list[dict], list[str]]:
    by_id = {s["id"]: s for s in steps}
    uses, calls = _uses(steps, outputs), _module_calls(steps)
    removed = {}
    for step in steps:
        producer = by_id.get(step["inputs"][0]) if step["op"] == "batchnorm" else None
        if producer is None or producer["op"] not in ("conv2d", "linear") or uses[producer["id"]] != 1:
            continue
        if calls[producer["module"]] != 1 or calls[step["module"]] != 1:
            continue
        _fold_into(model.get_submodule(producer["module"]), model.get_submodule(step["module"]))
        _replace(model, step["module"], nn.Identity())
        removed[step["id"]] = producer["id"]
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


def _merge_split_convs(model: nn.Module, steps: list[dict], mdconv: str) -> None:
    calls = _module_calls(steps)
    for step in steps:
        if step["op"] not in ("grouped_conv2d", "mixed_conv2d") or calls[step["module"]] != 1:
            continue
        split = model.get_submodule(step["module"])
        merged = _merged_conv(split, step, mdconv)
        if merged is not None:
            _replace(model, step["module"], merged)
            step["op"] = "conv2d"


def _merged_conv(split: SplitConv, step: dict, mdconv: str) -> nn.Conv2d | None:
    convs = list(getattr(split, split.attr))
    if len(convs) == 1:
        return convs[0]
    if step["op"] == "grouped_conv2d":
        same = len({(c.in_channels, c.out_channels, c.kernel_size) for c in convs}) == 1
        return _grouped(convs) if same else None
    if mdconv == "never":
        return None
    merged = _padded_depthwise(convs)
    if mdconv == "auto" and not _faster(merged, split, step["in_shapes"][0]):
        return None
    return merged


def _grouped(convs: list[nn.Conv2d]) -> nn.Conv2d:
    first = convs[0]
    conv = nn.Conv2d(first.in_channels * len(convs), first.out_channels * len(convs), first.kernel_size,
                     first.stride, first.padding, first.dilation, groups=len(convs), bias=False)
    conv.weight.copy_(torch.cat([c.weight for c in convs], 0))
    return conv


def _padded_depthwise(convs: list[nn.Conv2d]) -> nn.Conv2d:
    size = max(c.kernel_size[0] for c in convs)
    channels = sum(c.in_channels for c in convs)
    conv = nn.Conv2d(channels, channels, size, convs[0].stride, size // 2, groups=channels, bias=False)
    weight = torch.zeros_like(conv.weight)
    start = 0
    for c in convs:
        k = c.kernel_size[0]
        off = (size - k) // 2
        weight[start:start + c.in_channels, :, off:off + k, off:off + k] = c.weight
        start += c.in_channels
    conv.weight.copy_(weight)
    return conv


def _faster(candidate: nn.Module, current: nn.Module, shape: tuple, repeats: int = 15) -> bool:
    from archspec.timing import interleaved_medians

    new, old = interleaved_medians([candidate, current], torch.randn(1, *shape), repeats=repeats, warmup=2)
    return new < old
