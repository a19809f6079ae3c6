"""Fuzzers beyond spec text (issue 13): command-line argument vectors, weight files (safetensors header,
zip and pickle structure mutations) and `extends` trees with symlinks and special files.

Each case runs in this process under an alarm (a hang is a finding) and a memory limit; the promise it
checks is that exit 4 (an internal error) is unreachable: every case ends in exit 0-3 with no traceback,
and no output quotes the secret written in a file outside the spec's folder.

    python tests/fuzz/hostile_fuzz.py --seconds 600 --seed 1     # a long run by hand; prints a JSON report

The three fuzzers share the time given, round-robin; --only NAME runs one of them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BAD_WEIGHTS = ROOT / "tests/bad_weights"
SECRET = "OUTSIDE_SECRET_7f3a"
CASE_SECONDS = 20


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang()


def run_cli(argv: list[str]) -> tuple[int, str]:
    from archspec.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")  # has .buffer, as sys.stdout does
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    out.flush()
    return code, out.buffer.getvalue().decode("utf-8", "replace")[-2000:] + err.getvalue()


# ---- argv ---------------------------------------------------------------------------------------------------
def _values(rng: random.Random, paths: list[str]) -> str:
    return rng.choice([
        str(rng.randint(-3, 70)), str(rng.choice([0, 1, 2, 64, 65, -1, 1 << 63, 1 << 64, 10**30])), "", " ", "x",
        "1e3", "0x10", "+5", "-0", "٣", "1_000", rng.choice(paths), "=", "a=b", "width=~", "width=[1,2",
        "width=\"\\e\"", "num_classes=3", "p=" + "[" * 80, "k=" + "9" * 30, "\x00", "-", "--", "☃",
    ])


def argv_case(rng: random.Random, paths: list[str], work: Path) -> list[str]:
    command = rng.choice(["validate", "validate", "build", "draw", "export", "schema", "blocks", "port", "bogus"])
    argv = [command]
    if command in ("validate", "build", "draw", "export"):
        argv.append(rng.choice(paths))
    if command == "port":
        argv += [rng.choice(paths), "--spec", rng.choice(paths)]
    options = ["--set", "--seed", "--depth", "--max-params", "--max-calls", "--max-repeat", "--max-activation-mb",
               "--max-work", "--max-expr-work", "--format", "-o", "--weights", "--rankdir", "--json", "--meta",
               "--verify", "--bogus"]
    for _ in range(rng.randint(0, 4)):
        option = rng.choice(options)
        argv.append(option)
        if option in ("--json", "--meta"):
            continue
        if option == "-o":
            argv.append(rng.choice([str(work / "out.x"), str(work / "o.dot"), str(work / "o.py"), str(work / "nodir/o"),
                                    str(work), os.devnull, str(work / "link"), str(work / "fifo")]))
        elif option == "--format":
            argv.append(rng.choice(["dot", "python", "torchscript", "svg", "xyz", ""]))
        else:
            argv.append(_values(rng, paths))
    if command == "build" and "--meta" not in argv and rng.random() < 0.7:
        argv.append("--meta")  # keeps the run fast; a real build is still tried now and then
    return argv


# ---- weights ------------------------------------------------------------------------------------------------
def _mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.6:
            data = data[: rng.randrange(len(data) + 1)]
        elif choice < 0.8 and data:
            i = rng.randrange(len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif data:
            i, j = sorted(rng.randrange(len(data)) for _ in range(2))
            data[i:j] = data[i:j] * rng.randint(0, 3)
    return bytes(data)


def _mutate_header(rng: random.Random, header: dict) -> bytes:
    header = json.loads(json.dumps(header))
    key = rng.choice(list(header))
    entry = header[key]
    move = rng.randrange(9)
    if move == 0:
        entry["dtype"] = rng.choice(["F32", "F16", "I64", "Q4", "", 7, None, "BOOL", "F8_E4M3"])
    elif move == 1:
        entry["shape"] = rng.choice([[], [0], [-1], [2, 4], [1 << 40], [2.5], ["2"], None, [1] * 40])
    elif move == 2:
        entry["data_offsets"] = [rng.choice([0, 8, 32, 40, -1, 1 << 62]) for _ in range(rng.choice([0, 1, 2, 3]))]
    elif move == 3:
        header["__metadata__"] = rng.choice([{"a": "b"}, {"a": 1}, [], "x", None])
    elif move == 4:
        header[key + rng.choice(["", "x", "\u0000"])] = entry
    elif move == 5:
        del header[key]
    elif move == 6:
        entry[rng.choice(["extra", "dtype"])] = rng.choice([1, "F32", []])
    elif move == 7:
        text = json.dumps(header)
        return (text[:-1] + ", " + json.dumps(key) + ": " + json.dumps(entry) + "}").encode()  # duplicate key
    else:
        header = rng.choice([[], "x", 1, None, {"a": {"b": {"c": 1}}}])
    return json.dumps(header).encode()


def _rezip(rng: random.Random, raw: bytes) -> bytes:
    """Rewrite a torch zip with one record changed: its pickle mutated, compressed, dropped or doubled."""
    source = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    infos = source.infolist()
    target = rng.randrange(len(infos))
    move = rng.randrange(5)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as sink:
        for i, info in enumerate(infos):
            data = source.read(info.filename)
            if i == target:
                if move == 0:
                    data = _mutate_bytes(rng, data)
                elif move == 1:
                    sink.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
                    continue
                elif move == 2:
                    continue
                elif move == 3:
                    with contextlib.suppress(Exception):
                        sink.writestr(info.filename, data)
            with contextlib.suppress(Exception):
                sink.writestr(info.filename, data)
    return out.getvalue()


def weights_case(rng: random.Random, work: Path) -> tuple[str, Path]:
    raw = (BAD_WEIGHTS / "good.safetensors").read_bytes()
    good = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    kind = rng.randrange(4)
    if kind == 0:
        head = _mutate_header(rng, good)
        path = work / "w.safetensors"
        path.write_bytes(struct.pack("<Q", len(head)) + head + b"\0" * rng.choice([0, 36, 40, 44]))
    elif kind == 1:
        path = work / "w.safetensors"
        path.write_bytes(_mutate_bytes(rng, (BAD_WEIGHTS / "good.safetensors").read_bytes()))
    elif kind == 2:
        path = work / "w.pt"
        path.write_bytes(_rezip(rng, (BAD_WEIGHTS / "good.pt").read_bytes()))
    else:
        path = work / rng.choice(["w.pt", "w.pth"])
        path.write_bytes(_mutate_bytes(rng, (BAD_WEIGHTS / "good.pt").read_bytes()))
    return ["export", str(BAD_WEIGHTS / "tiny.yaml"), "--format", "python", "-o", str(work / "m.py"),
            "--weights", str(path)], path


# ---- extends trees ------------------------------------------------------------------------------------------
def extends_case(rng: random.Random, work: Path) -> list[str]:
    import shutil

    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "specs/sub").mkdir(parents=True)
    (tree / "outside").mkdir()
    specs = tree / "specs"
    body = ("archspec: 1\nname: base\ninput: [3, 8, 8]\nparams:\n  width: {type: int, default: 4}\n"
            "nodes:\n  - {name: c, block: conv2d, out: width, kernel: 3}\n")
    (specs / "base.yaml").write_text(body)
    (specs / "sub/base.yaml").write_text(body)
    (tree / "outside/secret.yaml").write_text(f"archspec: 1\nname: {SECRET}\ninput: [{SECRET}]\nnodes: {SECRET}\n"
                                              f"params: {{{SECRET}: 1}}\n")
    links = {"esc.yaml": tree / "outside/secret.yaml", "in.yaml": specs / "sub/base.yaml",
             "dangling.yaml": specs / "nope.yaml", "loop.yaml": specs / "loop.yaml", "dev.yaml": Path(os.devnull),
             "outdir": tree / "outside", "self.yaml": specs / "v0.yaml"}
    for name, target in links.items():
        if rng.random() < 0.7:
            (specs / name).symlink_to(target)
    if rng.random() < 0.5:
        os.mkfifo(specs / "fifo.yaml")
    if rng.random() < 0.3:
        (specs / "adir.yaml").mkdir()
    targets = ["base.yaml", "sub/base.yaml", "esc.yaml", "in.yaml", "dangling.yaml", "loop.yaml", "dev.yaml",
               "outdir/secret.yaml", "self.yaml", "fifo.yaml", "adir.yaml", "../outside/secret.yaml",
               "/etc/passwd.yaml", "v1.yaml", "v2.yaml", "sub/../base.yaml", "base.yml", "nope.yaml", "", "~"]
    extra = ["", "input: ~", "input: []", "input: [1, 2, 3, 4]", "input: [3, 8, 8]", "params: {width: ~}",
             "params: {width: 2}", "params: {bogus: 1}", "description: ~", "params: ~", "name: ~", "nodes: []"]
    for i in range(3):
        lines = ["archspec: 1", f"name: v{i}", f"extends: {rng.choice(targets)}"]
        lines += [e for e in rng.sample(extra, rng.randint(0, 2)) if e and not e.startswith("name")]
        (specs / f"v{i}.yaml").write_text("\n".join(lines) + "\n")
    return ["validate", str(specs / f"v{rng.randrange(3)}.yaml")] + (["--set", "width=3"] if rng.random() < 0.2
                                                                      else [])


# ---- driver -------------------------------------------------------------------------------------------------
def _limit_memory() -> None:
    import torch  # noqa: F401 - a CUDA build maps GBs of libraries: cap what the cases may add, not the total

    size = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize:")][0] * 1024
    limit = size + (3 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--only", choices=["argv", "weights", "extends"])
    args = parser.parse_args()
    import tempfile
    import warnings

    warnings.simplefilter("ignore")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hostile_fuzz_"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    if sys.platform.startswith("linux"):
        _limit_memory()
    signal.signal(signal.SIGALRM, _alarm)
    if not os.path.lexists(work / "link"):
        (work / "link").symlink_to(work / "target")
    if not os.path.lexists(work / "fifo"):
        os.mkfifo(work / "fifo")
    paths = [str(BAD_WEIGHTS / "tiny.yaml"), str(ROOT / "tests/bad/typo_key.yaml"),
             str(ROOT / "tests/bad/when_bomb.yaml"), str(ROOT / "tests/bad/variant_null_input.yaml"),
             str(ROOT / "tests/bad/init_bogus_mode.yaml"),
             str(BAD_WEIGHTS / "sparse.pt"), str(BAD_WEIGHTS / "good.safetensors"), str(work / "fifo"),
             str(work / "link"), os.devnull, str(work), "nope.yaml", "", "-"]
    rng = random.Random(args.seed)
    kinds = [args.only] if args.only else ["argv", "weights", "extends"]
    counts = {k: 0 for k in ("argv", "weights", "extends")}
    outcomes: dict[str, int] = {}
    findings = []
    deadline = time.monotonic() + args.seconds
    i = 0
    while time.monotonic() < deadline:
        kind = kinds[i % len(kinds)]
        i += 1
        if kind == "argv":
            argv = argv_case(rng, paths, work)
        elif kind == "weights":
            argv, _ = weights_case(rng, work)
        else:
            argv = extends_case(rng, work)
        signal.alarm(CASE_SECONDS)
        try:
            code, text = run_cli(argv)
            problem = None
            if code == 4 or "internal error" in text or "Traceback" in text:
                problem = "exit 4"
            elif SECRET in text:
                problem = "secret echoed"
        except Hang:
            code, text, problem = -1, "", f"no answer within {CASE_SECONDS} s"
        except BaseException as exc:  # noqa: BLE001 - anything escaping main() is a finding
            code, text, problem = -2, f"{type(exc).__name__}: {exc}"[:300], "raised out of main()"
        finally:
            signal.alarm(0)
        counts[kind] += 1
        outcome = f"{kind}:{code}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if problem:
            findings.append({"kind": kind, "argv": argv, "code": code, "problem": problem, "output": text[-400:]})
    print(json.dumps({"seed": args.seed, "seconds": args.seconds, "counts": counts, "outcomes": outcomes,
                      "exit_4": findings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
