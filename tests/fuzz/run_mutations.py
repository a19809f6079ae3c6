"""Run seeded spec mutations through parse, compile and (for small accepted ones) build + forward.

    python tests/fuzz/run_mutations.py --count 5000 --seed 0

Every input must give a module or an ArchspecError within the time cap; anything else is a crash.
The last line printed is a JSON summary; the exit status is 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from mutate import mutated  # noqa: E402

from archspec.errors import ArchspecError  # noqa: E402
from archspec.graph.limits import Limits  # noqa: E402
from archspec.graph.lower import lower  # noqa: E402
from archspec.spec.loader import parse  # noqa: E402

LIMITS = Limits(max_params=200_000_000, max_calls=50_000, max_repeat=512, max_activation_bytes=1 << 30)


def cap_memory(megabytes: int) -> None:
    """Import torch first (a CUDA build maps GBs of libraries), then cap what the fuzzing may add."""
    import resource

    import torch  # noqa: F401

    size = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize:")][0] * 1024
    limit = size + (megabytes << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_one(spec: Path, text: str, rng: random.Random, build: bool) -> str:
    graph = lower(parse(spec, text=text), LIMITS)
    if build and graph.total_params < 5_000_000 and graph.total_macs() < 400_000_000:
        import torch

        import archspec

        model = archspec.build(graph).eval()
        with torch.no_grad():
            out = model(torch.randn(1, *graph.input_shape))
        outs = out if isinstance(out, tuple) else (out,)
        got = [tuple(o.shape[1:]) for o in outs]
        if got != graph.output_shapes("eval"):
            raise AssertionError(f"static shapes {graph.output_shapes('eval')} but torch gave {got}")
        return "built"
    return "accepted"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=10)
    parser.add_argument("--build-fraction", type=float, default=0.1)
    parser.add_argument("--memory-mb", type=int, default=2048, help="address space each input may add")
    args = parser.parse_args()
    cap_memory(args.memory_mb)
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    texts = {s: s.read_text() for s in specs}
    outcomes: Counter = Counter()
    crashes = []
    signal.signal(signal.SIGALRM, _alarm)
    for i in range(args.count):
        rng = random.Random(args.seed * 1_000_003 + i)
        spec = specs[i % len(specs)]
        text = mutated(texts[spec], rng)
        signal.alarm(args.timeout)
        try:
            outcomes[run_one(spec, text, rng, rng.random() < args.build_fraction)] += 1
        except ArchspecError as exc:
            outcomes[exc.code] += 1
        except Hang:
            crashes.append({"i": i, "spec": spec.name, "error": f"no answer within {args.timeout} s"})
        except Exception as exc:  # the promise is broken: record it with the input that broke it
            crashes.append({"i": i, "spec": spec.name, "error": f"{type(exc).__name__}: {exc}"[:300],
                            "trace": traceback.format_exc()[-800:], "input": text[:2000]})
        finally:
            signal.alarm(0)
    print(json.dumps({"count": args.count, "seed": args.seed, "outcomes": dict(outcomes.most_common()),
                      "crashes": crashes[:20], "crash_count": len(crashes)}))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
