"""Forward latency of archspec-built modules against their reference modules, side by side.

Same weights (the reference's state_dict is loaded into the built module), same input, same thread
count, interleaved repeats; the table reports medians and the ratio archspec / reference.

    python benchmarks/forward.py [--specs resnet50 osnet_x1_0] [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from oracles import REFERENCES, load_by_order  # noqa: E402

import archspec  # noqa: E402

INPUTS = {"osnet_x1_0": (3, 256, 128)}


def timed(module: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    module(x)
    return time.perf_counter() - start


def measure(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    with torch.inference_mode():
        for _ in range(3):
            timed(ours, x), timed(ref, x)
        a, b = [], []
        for i in range(repeats):
            # alternate who goes first, so drift and cache effects fall on both
            if i % 2:
                a.append(timed(ours, x))
                b.append(timed(ref, x))
            else:
                b.append(timed(ref, x))
                a.append(timed(ours, x))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="*", default=list(REFERENCES))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeats} interleaved repeats, medians\n")
    print("| spec | reference | batch | archspec ms | reference ms | ratio |")
    print("|---|---|---|---|---|---|")
    for name in args.specs:
        ref = REFERENCES[name]()
        if ref is None:
            print(f"| {name} | not installed | | | | skipped |")
            continue
        ours = archspec.load(ROOT / "specs" / f"{name}.yaml")
        try:
            ours.load_state_dict(ref.state_dict(), strict=True)
        except RuntimeError:
            load_by_order(ours, ref)
        ours.eval(), ref.eval()
        for batch in args.batches:
            x = torch.randn(batch, *INPUTS.get(name, (3, 224, 224)))
            a, b = measure(ours, ref, x, args.repeats)
            print(f"| {name} | {type(ref).__module__.split('.')[0]}.{type(ref).__name__} | {batch} | "
                  f"{a * 1e3:.2f} | {b * 1e3:.2f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
