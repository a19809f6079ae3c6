"""The `archspec` command. Every spec error is printed located; exit codes are documented in the README."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from archspec.errors import ArchspecError, ErrorGroup

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_LIMIT, EXIT_INTERNAL = 0, 1, 2, 3, 4


def _overrides(pairs: list[tuple[str, Any]] | None) -> dict[str, Any]:
    return dict(pairs or [])


def _set_pair(text: str) -> tuple[str, Any]:
    """`--set KEY=VALUE`, read while the command line is parsed: a malformed one is a usage error (exit 2)."""
    from archspec.spec.loader import parse_override

    try:
        return parse_override(text)
    except ArchspecError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} [{exc.code}]") from None


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a decimal integer from `low` to `high` (anything else is exit 2 with a message)."""
    def parse(text: str) -> int:
        text = text.strip()
        if not text.lstrip("+-").isdigit() or len(text) > 24:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low:,} to {high:,}, got {value:,}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


CAP = 1 << 62  # caps are the caller's; this only keeps them plain machine integers
SEED = _int_in(0, (1 << 64) - 1, "a seed")
DEPTH = _int_in(0, 64, "a depth")
BATCH = _int_in(1, 1 << 20, "a batch")
MAX_DIM = 1 << 16  # a spec's `input:` sizes have the same bounds


def INPUT_SIZE(text: str) -> tuple[int, ...]:  # noqa: N802 (an argparse type, named like the others)
    """`--input C,H,W` (or `C` for a vector input): 1 to 3 sizes from 1 to 65,536; anything else is exit 2."""
    parts = text.replace("x", ",").replace("×", ",").split(",")
    if not 1 <= len(parts) <= 3 or not all(p.strip().isdigit() and len(p.strip()) <= 6 for p in parts):
        raise argparse.ArgumentTypeError(f"--input expects C,H,W (1 to 3 sizes), got {text[:40]!r}")
    sizes = tuple(int(p) for p in parts)
    if not all(1 <= d <= MAX_DIM for d in sizes):
        raise argparse.ArgumentTypeError(f"--input sizes must be from 1 to {MAX_DIM:,}, got {text[:40]!r}")
    return sizes


def _compile(args: argparse.Namespace, path: str):
    """Compile `path` with the command's caps, `--set` params and `--input` size."""
    import archspec

    return archspec.compile(path, _limits(args), getattr(args, "input", None), **_overrides(args.set))


PRETRAINED_HELP = "load the checkpoint the spec declares under `weights: TAG` (downloaded once, SHA-256 checked)"


def _limits(args: argparse.Namespace):
    from archspec.graph.limits import Limits

    return Limits(max_params=args.max_params, max_calls=args.max_calls, max_repeat=args.max_repeat,
                  max_activation_bytes=args.max_activation_mb << 20, max_work=args.max_work, max_build=args.max_build,
                  max_expr_work=args.max_expr_work,
                  max_download_bytes=getattr(args, "max_download_mb", Limits.max_download_bytes >> 20) << 20)


def _torch_available(spec: str) -> None:
    """Import torch, turning a failure (not installed, or refused by a memory limit) into a located error."""
    from archspec.errors import LimitError, Location

    try:
        import torch  # noqa: F401
    except (ImportError, OSError, MemoryError) as exc:
        raise LimitError(f"cannot load torch: {str(exc)[:200]}", Location(spec, 0, 0),
                         "install torch, or give the process more memory (a CUDA build maps several GB)",
                         code="limit.torch_unavailable") from None


def cmd_build(args: argparse.Namespace) -> int:
    import archspec

    graph = _compile(args, args.spec)
    print(archspec.summary(graph, depth=args.depth, batch=args.batch))
    from archspec.graph.limits import check_build

    check_build(_limits(args), graph)  # before torch is imported
    _torch_available(args.spec)
    model = archspec.build(graph, seed=args.seed, meta=args.meta, limits=_limits(args))
    if args.pretrained:
        _load_pretrained(model, graph, args)
    counted = sum(p.numel() for p in model.parameters())
    status = "matches" if counted == graph.total_params else "DIFFERS FROM"
    where = " on the meta device (no weights allocated)" if args.meta else ""
    print(f"built torch module {type(model).__name__} '{graph.name}'{where}: {counted:,} params "
          f"({status} the static count)")
    if args.optimize and not args.meta:
        _report_optimized(model, graph)
    return EXIT_OK if counted == graph.total_params else EXIT_INTERNAL


def _load_pretrained(model, graph, args: argparse.Namespace) -> None:
    from archspec.backends.pretrained import load_pretrained

    if getattr(args, "meta", False) or getattr(args, "weights", None):
        from archspec.errors import Location

        refused = ArchspecError("--pretrained loads weights; it cannot be combined with --meta or --weights",
                                Location(args.spec), code="usage.pretrained")
        refused.exit_code = EXIT_USAGE
        raise refused
    load_pretrained(model, graph, args.pretrained, _limits(args).max_download_bytes)
    print(f"loaded pretrained weights {args.pretrained!r} (SHA-256 verified)", file=sys.stderr)


def _report_optimized(model, graph) -> None:
    import archspec
    from archspec.timing import interleaved_medians

    model.eval()
    fast = archspec.optimize(model)
    x = _example_input(graph)
    before, after = interleaved_medians([model, fast], x, repeats=15)
    print(f"optimized (BatchNorm folded, split convs merged, channels_last={fast._plan.channels_last}): "
          f"batch 1 forward {before * 1e3:.2f} ms -> {after * 1e3:.2f} ms ({after / before:.2f}x), "
          f"medians of 15 interleaved runs")


def _example_input(graph):
    import torch

    return torch.randn(1, *graph.input_shape)


def cmd_validate(args: argparse.Namespace) -> int:

    results, worst = [], EXIT_OK
    for path in args.spec:
        try:
            graph = _compile(args, path)
            results.append({"file": path, "ok": True, "params": graph.total_params,
                            "macs": graph.total_macs("eval")})
            if not args.json:
                print(clean(f"{path}: ok ({graph.name}, {graph.total_params:,} params)"))
        except ArchspecError as exc:
            errors = exc.errors if isinstance(exc, ErrorGroup) else [exc]
            results.append({"file": path, "ok": False, "errors": [e.to_json() for e in errors]})
            worst = max(worst, exc.exit_code)
            if not args.json:
                say(exc.format())
    if args.json:
        print(json.dumps(results, indent=2))
    return worst


def cmd_schema(args: argparse.Namespace) -> int:
    from archspec.schema import schema_text

    text = schema_text()
    if args.output:
        from archspec.atomic import write_atomic

        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_draw(args: argparse.Namespace) -> int:
    import archspec
    from archspec.formats import pick_format

    fmt = pick_format("draw", args.output, args.format, default="svg" if args.output else "dot")
    from archspec.backends.render import render_bytes, write

    graph = _compile(args, args.spec)
    dot = archspec.draw(graph, depth=args.depth, rankdir=args.rankdir)
    if args.output is None:
        sys.stdout.buffer.write(render_bytes(dot, fmt, where=args.spec))
        return EXIT_OK
    write(dot, args.output, fmt, where=args.spec)
    say(f"wrote {args.output} ({fmt}, depth {args.depth})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    import archspec
    from archspec.formats import pick_format

    fmt = pick_format("export", args.output, args.format)
    graph = _compile(args, args.spec)
    if fmt != "python":  # refuse before building: tracing runs at batch 2
        from archspec.backends.export import TRACE_BATCH
        from archspec.errors import Location
        from archspec.graph.limits import check_traced

        check_traced(_limits(args), graph, TRACE_BATCH, Location(args.spec, 1, 1, ("input",)))
    model = archspec.build(graph, seed=args.seed, limits=_limits(args))
    if args.pretrained:
        _load_pretrained(model, graph, args)
    if args.weights:
        from archspec.backends.weights import load_weights

        load_weights(model, args.weights, graph)
    from archspec.backends.export import export

    written = export(model, graph, args.output, fmt, _limits(args))
    say(f"wrote {args.output} ({fmt})")
    for extra in written[1:]:
        say(f"wrote {extra} (the weights of {args.output}: keep it beside it, an ONNX file above 2 GB cannot "
            "hold them)")
    return EXIT_OK


def cmd_port(args: argparse.Namespace) -> int:
    from pathlib import Path

    import archspec
    from archspec.backends.port import in_source_order, map_by_order, read_state, select, verify, zoo_model
    from archspec.backends.weights import save_weights

    graph = archspec.compile(args.spec, _limits(args), **_overrides(args.set))
    model = archspec.build(graph, limits=_limits(args))
    source = zoo_model(args.verify) if args.verify else None
    source_state = in_source_order(read_state(Path(args.checkpoint)), Path(args.checkpoint), source)
    selected = select(source_state, args.keep or (), args.drop or (), args.checkpoint)
    mapped = map_by_order(selected, model.state_dict(), args.checkpoint)
    model.load_state_dict(mapped, strict=True)
    if source is not None:
        error = verify(model, source, source_state, graph.input_shape)
        say(f"verified against {args.verify}: max output difference {error:.2e} of the largest output")
        if error > 1e-4:
            say("archspec: the ported model does not agree with the source model")
            return EXIT_INVALID
    save_weights(model, args.output)
    say(f"wrote {args.output}: {len(mapped)} tensors mapped by position")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from archspec.catalog import list_specs, render

    infos = list_specs(args.pattern)
    if args.json:
        import dataclasses

        print(json.dumps([dataclasses.asdict(info) for info in infos], indent=2))
    else:
        sys.stdout.write(render(infos))
    return EXIT_OK if infos else EXIT_INVALID


def cmd_blocks(args: argparse.Namespace) -> int:
    from archspec.docs_gen import block_text, blocks_text

    sys.stdout.write(blocks_text() if args.name is None else block_text(args.name))
    return EXIT_OK


DEPTH_HELP = ("group calls by the first D parts of their module path, the same in build and draw: 1 = top-level "
              "nodes, 2 = block instances (default), 3 = inside blocks, 0 = every call")
INPUT_HELP = "override the spec's declared input size, e.g. 3,256,128 (caps apply to it)"
EXAMPLES = {
    "build": ["archspec build specs/osnet_x1_0.yaml", "archspec build resnet50 --pretrained imagenet",
              "archspec build specs/resnet50.yaml --set num_classes=10 --depth 1 --batch 32",
              "archspec build specs/osnet_x1_0.yaml --input 3,128,64 --meta"],
    "validate": ["archspec validate specs/*.yaml", "archspec validate --json bad.yaml"],
    "schema": ["archspec schema -o archspec.schema.json"],
    "draw": ["archspec draw specs/osnet_x1_0.yaml -o osnet.svg",
             "archspec draw specs/resnet50.yaml --depth 1 --format dot > resnet50.dot"],
    "export": ["archspec export specs/osnet_x1_0.yaml -o osnet.onnx --weights w.safetensors",
               "archspec export specs/mobilenet_v2.yaml -o mnv2.pt2 --input 3,160,160",
               "archspec export specs/osnet_x1_0.yaml --format python -o osnet.py"],
    "port": ["archspec port tv_mobilenet_v2.pth --spec specs/mobilenet_v2.yaml -o mnv2.safetensors "
             "--verify torchvision:mobilenet_v2"],
    "blocks": ["archspec blocks", "archspec blocks Bottleneck"],
    "list": ["archspec list", "archspec list 'resnet*' --json"],
}


class Parser(argparse.ArgumentParser):
    """argparse with its messages cleaned of control characters (an argument may hold an ANSI escape)."""

    def _print_message(self, message: str, file: Any = None) -> None:
        super()._print_message(clean(message) if message else message, file)


# (flag, least value, help); each default is Limits' own, so the caps have one source of truth
_CAP_FLAGS = (
    ("--max-params", 0, "refuse specs above this many params"),
    ("--max-calls", 1, "refuse graphs above this many calls"),
    ("--max-repeat", 1, "refuse a repeat above this count"),
    ("--max-work", 1, "refuse specs whose lowering visits more nodes than this (repeats multiply)"),
    ("--max-build", 1, "refuse to build more torch calls + modules than this (validate is not affected)"),
    ("--max-expr-work", 1, "refuse specs whose expressions take more evaluation steps than this"),
)


def _spec_options(p: argparse.ArgumentParser, input_size: bool = True) -> None:
    from archspec.graph.limits import Limits

    defaults = Limits()
    p.add_argument("--set", action="append", metavar="KEY=VALUE", type=_set_pair,
                   help="override a param (repeatable)")
    if input_size:
        p.add_argument("--input", type=INPUT_SIZE, metavar="C,H,W", help=INPUT_HELP)
    for flag, least, help_text in _CAP_FLAGS:
        p.add_argument(flag, type=_int_in(least, CAP, flag), default=getattr(defaults, flag[2:].replace("-", "_")),
                       help=help_text)
    p.add_argument("--max-activation-mb", type=_int_in(1, CAP >> 20, "--max-activation-mb"),
                   default=defaults.max_activation_bytes >> 20,
                   help="refuse specs whose activations at the (declared or --input) input exceed this "
                        "(MiB per sample)")


def _pretrained_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretrained", metavar="TAG", help=PRETRAINED_HELP)
    p.add_argument("--max-download-mb", type=_int_in(1, CAP >> 20, "--max-download-mb"), default=1024,
                   help="refuse a --pretrained download larger than this (MiB)")


def _add_build(add: Callable) -> None:
    p = add("build", cmd_build, "validate a spec, compile it to a torch module and print a summary")
    p.add_argument("spec", help="the spec file (.yaml)")
    p.add_argument("--depth", type=DEPTH, default=2, metavar="D", help=DEPTH_HELP)
    p.add_argument("--batch", type=BATCH, default=1, metavar="N",
                   help="the batch the summary's activation memory is given at (default 1)")
    p.add_argument("--seed", type=SEED, help="seed the weight initialisation (same spec + seed = same weights)")
    p.add_argument("--meta", action="store_true", help="build on the meta device: shapes only, no weights")
    p.add_argument("--optimize", action="store_true",
                   help="also make the inference build and print its batch-1 latency against the plain one")
    _pretrained_options(p)
    _spec_options(p)


def _add_validate(add: Callable) -> None:
    p = add("validate", cmd_validate, "check specs: schema, graph, shapes (no torch)")
    p.add_argument("spec", nargs="+", help="one or more spec files")
    p.add_argument("--json", action="store_true", help="machine-readable diagnostics on stdout")
    _spec_options(p)


def _add_schema(add: Callable) -> None:
    p = add("schema", cmd_schema, "print the JSON Schema of spec files (draft-07)")
    p.add_argument("-o", "--output", help="write it to this file instead of stdout")


def _add_draw(add: Callable) -> None:
    p = add("draw", cmd_draw, "draw the architecture (Graphviz); --format dot needs no Graphviz install")
    p.add_argument("spec", help="the spec file (.yaml)")
    p.add_argument("-o", "--output", help="output file; its suffix picks the format (default: DOT on stdout)")
    p.add_argument("--format", choices=["svg", "png", "pdf", "dot"],
                   help="the format; must agree with the -o suffix (.svg, .png, .pdf, .dot or .gv)")
    p.add_argument("--depth", type=DEPTH, default=2, metavar="D", help=DEPTH_HELP)
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top to bottom (TB) or left to right (LR)")
    _spec_options(p)


def _add_export(add: Callable) -> None:
    p = add("export", cmd_export, "export a built spec: ONNX, torch.export, TorchScript, or standalone Python")
    p.add_argument("spec", help="the spec file (.yaml)")
    p.add_argument("--format", choices=["onnx", "exported", "torchscript", "python"],
                   help="onnx (.onnx), exported (torch.export, .pt2), torchscript (.pt; deprecated by torch) or "
                        "python (.py); default: from the -o suffix, which must agree")
    p.add_argument("-o", "--output", required=True, help="the output file")
    p.add_argument("--seed", type=SEED, help="seed the weights (when no --weights)")
    p.add_argument("--weights", help="a .safetensors or .pt/.pth state_dict to load first")
    _pretrained_options(p)
    _spec_options(p)


def _add_port(add: Callable) -> None:
    p = add("port", cmd_port, "map a checkpoint of another layout onto a spec by parameter order and shape")
    p.add_argument("checkpoint", help=".safetensors, or .pt/.pth (read with weights_only=True)")
    p.add_argument("--spec", required=True, help="the spec whose layout the weights are mapped to")
    p.add_argument("-o", "--output", required=True, help="the mapped weights, as .safetensors")
    p.add_argument("--verify", metavar="ZOO:NAME", help="check outputs against torchvision:NAME or timm:NAME")
    p.add_argument("--keep", action="append", metavar="PATTERN",
                   help="map only the checkpoint's tensors whose names match this glob (repeatable)")
    p.add_argument("--drop", action="append", metavar="PATTERN",
                   help="leave out the checkpoint's tensors whose names match this glob, e.g. 'fc.*' (repeatable)")
    _spec_options(p, input_size=False)


def _add_blocks(add: Callable) -> None:
    p = add("blocks", cmd_blocks, "list primitives and composite blocks with their params")
    p.add_argument("name", nargs="?", help="print only this primitive or block (e.g. conv2d, Bottleneck)")


def _add_list(add: Callable) -> None:
    p = add("list", cmd_list, "list the specs found by name (ARCHSPEC_PATH folders, then the shipped specs)")
    p.add_argument("pattern", nargs="?", help="a glob (resnet*) or a part of the name (osnet)")
    p.add_argument("--json", action="store_true", help="machine-readable rows")


def _parser() -> argparse.ArgumentParser:
    import archspec

    parser = Parser(prog="archspec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"archspec {archspec.__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help_text: str) -> argparse.ArgumentParser:
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(fn=fn)
        return p

    for adder in (_add_build, _add_validate, _add_schema, _add_draw, _add_export, _add_port, _add_blocks,
                  _add_list):
        adder(add)
    return parser


def clean(text: str) -> str:
    """Control characters (an ANSI escape in a file name or argument) shown as \\xNN: messages never
    colour or move the terminal, and a log or pipe gets plain text."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def say(text: str) -> None:
    """A message on stderr, cleaned of control characters."""
    print(clean(text), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "output", None) is not None:  # refuse a path we will not write before doing the work
            from archspec.atomic import check_output

            check_output(args.output)
        return args.fn(args)
    except ArchspecError as exc:
        say(exc.format())
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the promise is: never a traceback
        where = getattr(args, "spec", None)
        where = f"{where if isinstance(where, str) else ' '.join(where)}: " if where else ""
        say(f"{where}archspec: internal error: {type(exc).__name__}: {str(exc)[:300]}\n"
            "  hint: this is a bug in archspec; please report it with the spec that caused it")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
