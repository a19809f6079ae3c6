"""Differential checks of one generated spec: four evaluators agree, static figures are true, gradients flow.

The evaluators:
1. the built module (its generated fx forward);
2. `evaluate_graph`: a plain walk of the typed graph, call by call, with the reference ops (ref_ops.py);
3. the standalone Python export, imported from a file;
4. the generator's own intent (intent.py), which never sees archspec's lowering: it catches a typed graph
   that is consistently wrong, which the first three would all agree on.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.backends.pysource import python_source
from differential.intent import Runner, expected_state
from differential.ref_ops import OPS, macs

MODES = ("eval", "train")
BATCH = 2


def evaluate_graph(tg, model, x, mode: str):
    """Walk the typed graph in spec order (a topological order) and run each call with the reference ops."""
    values = {"input": x}
    live = tg.live(mode)
    for call in tg.calls():
        if call.id not in live:
            continue
        weights = {}
        if call.module is not None:
            weights = dict(model.get_submodule(call.module).state_dict())
        args = call.args.model_dump()
        values[call.id] = OPS[call.op](args, [values[i] for i in call.inputs], weights, mode == "train")
    return [values[o] for o in tg.outputs[mode]], values


def perturb(model, generator: torch.Generator) -> None:
    """Norm parameters and statistics far from their defaults, so that every one of them matters."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.5, generator=generator)
                module.running_mean.normal_(0, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)


def as_list(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def run(model, x, mode: str) -> list:
    model = copy.deepcopy(model)
    model.train(mode == "train")
    with torch.no_grad():
        return as_list(model(x))


def load_export(source: str, path: Path):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(spec.name, None)
    return module.build()


def close(a: list, b: list, what: str) -> None:
    assert len(a) == len(b), f"{what}: {len(a)} outputs vs {len(b)}"
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape, f"{what}: output {i} shapes {tuple(u.shape)} vs {tuple(v.shape)}"
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-9, msg=lambda m, i=i: f"{what}, output {i}: {m}")


def check_spec(data: dict, intent, workdir: Path, seed: int = 0) -> dict:
    """Compile and build `data`; assert every property. Returns a few counts for reporting."""
    path = workdir / "generated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    tg = archspec.compile(path)
    model = archspec.build(tg, seed=seed).double()
    generator = torch.Generator().manual_seed(seed)
    perturb(model, generator)
    state = model.state_dict()

    # the layout the spec describes, in order
    got = [(k, tuple(v.shape)) for k, v in state.items()]
    assert got == expected_state(intent.body, intent.env), f"state_dict layout\n{got}"
    # static figures
    assert tg.total_params == sum(p.numel() for p in model.parameters()), "static params"
    for mode in MODES:
        assert [tuple(s) for s in tg.output_shapes(mode)] == [tuple(s) for s in intent.output_shapes[mode]], \
            f"static output shapes ({mode})"

    exported = load_export(python_source(tg, model), workdir / "exported.py").double()
    exported.load_state_dict(state, strict=True)
    x = torch.randn(BATCH, *tg.input_shape, generator=generator, dtype=torch.float64) * 3.0
    for mode in MODES:
        fast = run(model, x, mode)
        reference, values = evaluate_graph(tg, copy.deepcopy(model), x, mode)
        close(fast, reference, f"generated forward vs graph walk ({mode})")
        close(fast, run(exported, x, mode), f"generated forward vs Python export ({mode})")
        names: dict = {}
        Runner(state, mode == "train").body(intent.body, intent.env, "", x, names)
        close(fast, [names[n] for n in intent.outputs[mode]], f"generated forward vs the spec's intent ({mode})")
        for call in tg.calls():  # static shapes and MACs, call by call
            if call.id in values:
                assert tuple(values[call.id].shape[1:]) == tuple(call.out_shape), f"static shape of {call.id}"
                assert macs(call.op, call.args.model_dump(), call.in_shapes[0], call.out_shape) == call.macs, \
                    f"static MACs of {call.id}"
    check_hooks(tg, model, x)
    check_flops(tg, model, x)
    check_gradients(tg, model, x)
    return {"calls": len(tg.calls()), "params": tg.total_params}


def check_hooks(tg, model, x) -> None:
    """Forward hooks see each module's calls with the statically inferred shapes, in order."""
    seen: dict[str, list] = {}
    handles = []
    for path, _ in tg.modules.items():
        if tg.modules[path].kind == "leaf":
            module = model.get_submodule(path)
            handles.append(module.register_forward_hook(
                lambda m, i, o, path=path: seen.setdefault(path, []).append(tuple(o.shape[1:]))))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    live = tg.live("eval")
    want: dict[str, list] = {}
    for call in tg.calls():
        if call.id in live and call.module is not None:
            want.setdefault(call.module, []).append(tuple(call.out_shape))
    assert seen == want, f"module calls seen by hooks {seen} vs static {want}"


def check_flops(tg, model, x) -> None:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == 2 * BATCH * tg.total_macs("eval"), "MACs counted by torch vs static"


def check_gradients(tg, model, x) -> None:
    """In train mode every parameter of a module that train mode calls gets a gradient, and no other."""
    model = copy.deepcopy(model).train()
    outputs = [o for o in as_list(model(x)) if o.requires_grad]
    if outputs:  # (a network without parameters has nothing to differentiate)
        sum(o.square().mean() for o in outputs).backward()
    called = {tg.call(c).module for c in tg.live("train")} - {None}
    for name, p in model.named_parameters():
        parts = name.split(".")[:-1]
        owners = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # its module and those above it
        if owners & called:
            assert p.grad is not None, f"no gradient reaches {name}"
        else:
            assert p.grad is None, f"{name} gets a gradient but train mode calls no module of it"
