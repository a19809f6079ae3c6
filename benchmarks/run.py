"""archspec-built modules against their reference modules, side by side, in one run.

    python benchmarks/run.py [--specs osnet_x1_0 mixnet_s] [--repeats 21] [--inductor]

For each spec with a reference implementation installed (torchvision, torchreid, timm): the same
weights are loaded into both modules, the same input and thread count are used, repeats are
interleaved, and medians are compared. Columns:
- forward b1 / b8: latency ratio archspec / reference at batch 1 and 8;
- optimized b1 / b8: `archspec.optimize(model)` / reference;
- build: time to construct the module (archspec.load: parse, lower, build, generate the forward)
  / the reference constructor;
- build memory: peak RSS growth of a fresh process while building, archspec / reference (libraries are
  imported before the baseline, on both sides).
With --inductor, the last line gives torch.compile's (inductor) speed-up for resnet50 at batch 8.
The machine is shared and noisy: only these ratios mean much.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from oracles import ORACLES, load_by_order  # noqa: E402

import archspec  # noqa: E402
from archspec.timing import interleaved_medians  # noqa: E402

MEMORY_PROBE = """
import sys

def high_water_kib():  # VmHWM starts afresh at exec; ru_maxrss would inherit the parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

sys.path.insert(0, {tests!r})
import torch, archspec
from oracles import ORACLES
try:  # the reference libraries are imported on both sides, before the baseline
    import torchvision.models
except Exception:
    pass
try:
    import timm
except Exception:
    pass
archspec.compile({spec!r})  # and archspec's own imports (pydantic models, block files)
torch.set_num_threads(1)
before = high_water_kib()
model = archspec.load({spec!r}) if {ours} else ORACLES[{name!r}][0]()
print(high_water_kib() - before)
"""


def build_memory_ratio(name: str, repeats: int = 3) -> float:
    spec = str(ROOT / "specs" / f"{name}.yaml")
    grown: dict[bool, list[int]] = {True: [], False: []}
    for i in range(repeats):
        for ours in ((True, False) if i % 2 else (False, True)):
            code = MEMORY_PROBE.format(tests=str(ROOT / "tests"), spec=spec, ours=ours, name=name)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
            grown[ours].append(int(out.stdout.strip().splitlines()[-1]))
    return statistics.median(grown[True]) / max(statistics.median(grown[False]), 1)


def build_time_ratio(name: str, repeats: int = 5) -> float:
    spec = ROOT / "specs" / f"{name}.yaml"
    factory = ORACLES[name][0]
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats):
        for ours in ((True, False) if i % 2 else (False, True)):
            start = time.perf_counter()
            archspec.load(spec) if ours else factory()
            times[ours].append(time.perf_counter() - start)
    return statistics.median(times[True]) / statistics.median(times[False])


def row(name: str, repeats: int) -> dict | None:
    factory, match = ORACLES[name]
    ref = factory()
    if ref is None:
        return None
    ours = archspec.load(ROOT / "specs" / f"{name}.yaml")
    if match == "names":
        ours.load_state_dict(ref.state_dict(), strict=True)
    else:
        load_by_order(ours, ref)
    ours.eval(), ref.eval()
    fast = archspec.optimize(ours)
    shape = ours._plan.input_shape
    result = {"spec": name, "reference": f"{type(ref).__module__.split('.')[0]}.{type(ref).__name__}"}
    for batch in (1, 8):
        x = torch.randn(batch, *shape)
        a, b, c = interleaved_medians([ours, ref, fast], x, repeats=repeats)
        result[f"forward_b{batch}"] = a / b
        result[f"optimized_b{batch}"] = c / b
        result[f"ref_ms_b{batch}"] = b * 1e3
    result["build"] = build_time_ratio(name)
    result["build_memory"] = build_memory_ratio(name)
    return result


def inductor_speedup(repeats: int) -> float:
    model = archspec.load(ROOT / "specs/resnet50.yaml").eval()
    compiled = torch.compile(model)
    x = torch.randn(8, 3, 224, 224)
    with torch.inference_mode():
        compiled(x)  # compile outside the timing
    eager, fast = interleaved_medians([model, compiled], x, repeats=repeats)
    return eager / fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="*", default=list(ORACLES))
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--inductor", action="store_true")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{date.today()}, {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{args.threads} threads, {args.repeats} interleaved repeats, medians; ratios are archspec / reference\n")
    print("| spec | reference | forward b1 | forward b8 | optimized b1 | optimized b8 | build | build memory |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.specs:
        r = row(name, args.repeats)
        if r is None:
            print(f"| {name} | not installed | | | | | | |")
            continue
        rows.append(r)
        print(f"| {name} | {r['reference']} | {r['forward_b1']:.3f} | {r['forward_b8']:.3f} | "
              f"{r['optimized_b1']:.3f} | {r['optimized_b8']:.3f} | {r['build']:.2f} | {r['build_memory']:.2f} |",
              flush=True)
    if args.inductor:
        print(f"\ntorch.compile (inductor) speed-up, resnet50, batch 8: {inductor_speedup(args.repeats):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
