"""Long differential runs by hand: `python tests/differential/run_many.py --count 20000 --seed 1`.

Runs the checks of tests/test_differential.py over `--count` generated specs, in chunks of 100 with
their own hypothesis seeds, so that one failure does not end the run. Failing specs are written to
`--out` (YAML, with the error), and a JSON summary is printed last.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import yaml  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from differential.check import check_spec  # noqa: E402
from differential.specgen import specs  # noqa: E402


def run_chunk(seed: int, count: int, out: Path, report: dict) -> None:
    @hypothesis_seed(seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(specs())
    def one(case):
        data, intent = case
        with tempfile.TemporaryDirectory() as tmp:
            try:
                check_spec(data, intent, Path(tmp))
            except Exception as exc:
                report["failed"] += 1
                name = out / f"fail_{seed}_{report['failed']}.yaml"
                text = yaml.safe_dump(data, sort_keys=False)
                name.write_text(f"# {type(exc).__name__}: {str(exc)[:2000]}\n".replace("\n", "\n# ") + "\n" + text)
                raise
            report["passed"] += 1

    try:
        one()
    except Exception:
        report["chunks_with_failures"].append(seed)
        traceback.print_exc(limit=1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("differential-failures"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    report = {"passed": 0, "failed": 0, "chunks_with_failures": []}
    start = time.time()
    chunk = 0
    while report["passed"] + report["failed"] < args.count:
        left = args.count - report["passed"] - report["failed"]
        run_chunk(args.seed * 1_000_003 + chunk, min(100, left), args.out, report)
        chunk += 1
    report["seconds"] = round(time.time() - start)
    print(json.dumps(report))
    return 0 if report["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
