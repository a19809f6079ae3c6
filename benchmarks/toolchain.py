"""How fast the toolchain answers: validate, static summaries, large generated specs, --meta builds.

    python benchmarks/toolchain.py

Wall times are medians of fresh processes (validate, --meta) or of in-process repeats (static stages).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from gen_spec import chain_spec  # noqa: E402

import archspec  # noqa: E402
from archspec.gcpause import gc_paused  # noqa: E402
from archspec.graph.limits import Limits  # noqa: E402
from archspec.graph.lower import lower  # noqa: E402
from archspec.source import LoaderLimits  # noqa: E402
from archspec.spec.loader import parse  # noqa: E402

VALIDATE = ("import sys\nfrom archspec.cli import main\ncode = main(['validate', sys.argv[1]])\n"
            "assert 'torch' not in sys.modules\nsys.exit(code)")
META = ("import sys\nfrom archspec.cli import main\nimport contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    code = main(['build', sys.argv[1], '--meta'])\n"
        "hwm = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')][0]\n"
        "print(hwm // 1024)\nsys.exit(code)")


def wall(argv: list[str], repeats: int = 5) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        out = proc.stdout
    return statistics.median(times), out


def main() -> None:
    print(f"python {sys.version.split()[0]}; medians\n")
    print("| check | result |\n|---|---|")
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    worst = max((wall([sys.executable, "-c", VALIDATE, str(s)])[0], s.name) for s in specs)
    print(f"| `archspec validate` on each of {len(specs)} shipped specs, fresh process, no torch | "
          f"slowest {worst[0]:.3f} s ({worst[1]}) |")
    archspec.compile(ROOT / "specs/resnet152.yaml")  # block files read once per process
    times = []
    for _ in range(5):
        start = time.perf_counter()
        archspec.summary(archspec.compile(ROOT / "specs/resnet152.yaml"))
        times.append(time.perf_counter() - start)
    print(f"| static summary of resnet152 (parse, lower, infer, table) | {statistics.median(times):.3f} s |")
    for calls in (1_000, 10_000, 100_000):
        text = chain_spec(calls)
        start = time.perf_counter()
        with gc_paused():
            graph = lower(parse(ROOT / "x.yaml", text=text, limits=LoaderLimits(max_bytes=64 << 20, max_nodes=10**7)),
                          Limits(max_calls=10**6))
        seconds = time.perf_counter() - start
        print(f"| generated spec, {calls:,} nodes ({len(text) / 1024:,.0f} KiB of YAML): validate + infer | "
              f"{seconds:.3f} s ({seconds / len(graph.graph) * 1e6:.1f} µs per node) |")
    seconds, out = wall([sys.executable, "-c", META, str(ROOT / "benchmarks/billion.yaml")], repeats=3)
    params = archspec.compile(ROOT / "benchmarks/billion.yaml").total_params
    print(f"| `archspec build --meta` of a {params / 1e9:.2f}-billion-parameter spec | {seconds:.2f} s, "
          f"peak RSS {out.strip()} MiB |")


if __name__ == "__main__":
    main()
