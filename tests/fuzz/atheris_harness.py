"""Coverage-guided fuzzing of the whole static pipeline (bytes -> YAML -> spec -> graph) with atheris.

    pip install atheris
    python tests/fuzz/atheris_harness.py -max_total_time=60 -rss_limit_mb=0 tests/fuzz/corpus

Any exception other than ArchspecError, or a hang past atheris' timeout, is a finding; atheris writes
the input that caused it to crash-<hash> in the working directory. The seed corpus is every shipped spec
and every file of the conformance corpus (tests/bad). See tests/fuzz/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from archspec.errors import ArchspecError
    from archspec.graph.limits import Limits
    from archspec.graph.lower import lower
    from archspec.spec.loader import parse

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "specs" / "fuzzed.yaml"  # `extends` resolves against the shipped specs
LIMITS = Limits(max_params=200_000_000, max_calls=20_000, max_repeat=256, max_activation_bytes=1 << 30)


def one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # the loader's own UTF-8 check is covered by tests/bad
    try:
        lower(parse(SPEC_PATH, text=text), LIMITS)
    except ArchspecError:
        pass


def cap_memory(megabytes: int = 2048) -> None:
    """libFuzzer's -rss_limit_mb reads ru_maxrss, which a process inherits across exec from its parent
    (a test runner may hold GBs): cap this process's own growth instead. A blow-up is a MemoryError,
    which atheris reports as a crash."""
    import resource

    size = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize:")][0] * 1024
    limit = size + (megabytes << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    cap_memory()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
