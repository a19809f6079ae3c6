"""The `archspec` command. Every spec error is printed located; exit codes are documented in the README."""

from __future__ import annotations

import argparse
import json
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

    graph = archspec.compile(args.spec, _limits(args), **_overrides(args.set))
    print(archspec.summary(graph, depth=args.depth))
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
    print(f"optimized (BatchNorm folded, split convs merged, channels_last={fast._plan['channels_last']}): "
          f"batch 1 forward {before * 1e3:.2f} ms -> {after * 1e3:.2f} ms ({after / before:.2f}x), "
          f"medians of 15 interleaved runs")


def _example_input(graph):
    import torch

    return torch.randn(1, *graph.input_shape)


def cmd_validate(args: argparse.Namespace) -> int:
    import archspec

    results, worst = [], EXIT_OK
    for path in args.spec:
        try:
            graph = archspec.compile(path, _limits(args), **_overrides(args.set))
            results.append({"file": path, "ok": True, "params": graph.total_params,
                            "macs": graph.total_macs("eval")})
            if not args.json:
                print(f"{path}: ok ({graph.name}, {graph.total_params:,} params)")
        except ArchspecError as exc:
            errors = exc.errors if isinstance(exc, ErrorGroup) else [exc]
            results.append({"file": path, "ok": False, "errors": [e.to_json() for e in errors]})
            worst = max(worst, exc.exit_code)
            if not args.json:
                print(exc.format(), file=sys.stderr)
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
    from archspec.backends.render import render_bytes, write

    graph = archspec.compile(args.spec, _limits(args), **_overrides(args.set))
    dot = archspec.draw(graph, depth=args.depth, rankdir=args.rankdir)
    if args.output is None:
        fmt = args.format or "dot"
        sys.stdout.buffer.write(render_bytes(dot, fmt, where=args.spec))
        return EXIT_OK
    fmt = write(dot, args.output, args.format, where=args.spec)
    print(f"wrote {args.output} ({fmt}, depth {args.depth})", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    import archspec
    from archspec.backends.export import export

    graph = archspec.compile(args.spec, _limits(args), **_overrides(args.set))
    if args.format in ("onnx", "torchscript"):  # refuse before building: tracing runs at batch 2
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
    export(model, graph, args.output, args.format, _limits(args))
    print(f"wrote {args.output} ({args.format})", file=sys.stderr)
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
        print(f"verified against {args.verify}: max output difference {error:.2e} of the largest output",
              file=sys.stderr)
        if error > 1e-4:
            print("archspec: the ported model does not agree with the source model", file=sys.stderr)
            return EXIT_INVALID
    save_weights(model, args.output)
    print(f"wrote {args.output}: {len(mapped)} tensors mapped by position", file=sys.stderr)
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
    from archspec.docs_gen import blocks_text

    sys.stdout.write(blocks_text())
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archspec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        return p

    def download_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--max-download-mb", type=_int_in(1, CAP >> 20, "--max-download-mb"), default=1024,
                       help="refuse a --pretrained download larger than this (MiB)")

    def spec_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", metavar="KEY=VALUE", type=_set_pair,
                       help="override a param (repeatable)")
        p.add_argument("--max-params", type=_int_in(0, CAP, "--max-params"), default=2_000_000_000,
                       help="refuse specs above this many params")
        p.add_argument("--max-calls", type=_int_in(1, CAP, "--max-calls"), default=100_000,
                       help="refuse graphs above this many calls")
        p.add_argument("--max-repeat", type=_int_in(1, CAP, "--max-repeat"), default=4096,
                       help="refuse a repeat above this count")
        p.add_argument("--max-work", type=_int_in(1, CAP, "--max-work"), default=250_000,
                       help="refuse specs whose lowering visits more nodes than this (repeats multiply)")
        p.add_argument("--max-build", type=_int_in(1, CAP, "--max-build"), default=40_000,
                       help="refuse to build more torch calls + modules than this (validate is not affected)")
        p.add_argument("--max-expr-work", type=_int_in(1, CAP, "--max-expr-work"), default=2_000_000,
                       help="refuse specs whose expressions take more evaluation steps than this")
        p.add_argument("--max-activation-mb", type=_int_in(1, CAP >> 20, "--max-activation-mb"), default=8192,
                       help="refuse specs whose activations at the declared input exceed this (MiB per sample)")

    build = add("build", cmd_build, "validate a spec, compile it to a torch module and print a summary")
    build.add_argument("spec")
    build.add_argument("--depth", type=DEPTH, default=2, help="group rows by this many path parts (0: every call)")
    build.add_argument("--seed", type=SEED, help="seed the weight initialisation (same spec + seed = same weights)")
    build.add_argument("--meta", action="store_true", help="build on the meta device: shapes only, no weights")
    build.add_argument("--optimize", action="store_true",
                       help="also make the inference build and print its batch-1 latency against the plain one")
    build.add_argument("--pretrained", metavar="TAG", help=PRETRAINED_HELP)
    download_option(build)
    spec_options(build)
    validate = add("validate", cmd_validate, "check specs: schema, graph, shapes (no torch)")
    validate.add_argument("spec", nargs="+")
    validate.add_argument("--json", action="store_true", help="machine-readable diagnostics")
    spec_options(validate)
    schema = add("schema", cmd_schema, "print the JSON Schema of spec files (draft-07)")
    schema.add_argument("-o", "--output")
    draw = add("draw", cmd_draw, "draw the architecture (Graphviz); --format dot needs no Graphviz install")
    draw.add_argument("spec")
    draw.add_argument("-o", "--output", help="output file; its suffix picks the format (default: DOT on stdout)")
    draw.add_argument("--format", choices=["svg", "png", "pdf", "dot"])
    draw.add_argument("--depth", type=DEPTH, default=2, help="1: top-level blocks; 2+: expand blocks into clusters")
    draw.add_argument("--rankdir", choices=["TB", "LR"], default="TB")
    spec_options(draw)
    exporter = add("export", cmd_export, "export a built spec: ONNX, TorchScript, or standalone Python source")
    exporter.add_argument("spec")
    exporter.add_argument("--format", required=True, choices=["onnx", "torchscript", "python"])
    exporter.add_argument("-o", "--output", required=True)
    exporter.add_argument("--seed", type=SEED, help="seed the weights (when no --weights)")
    exporter.add_argument("--weights", help="a .safetensors or .pt/.pth state_dict to load first")
    exporter.add_argument("--pretrained", metavar="TAG", help=PRETRAINED_HELP)
    download_option(exporter)
    spec_options(exporter)
    port = add("port", cmd_port, "map a checkpoint of another layout onto a spec by parameter order and shape")
    port.add_argument("checkpoint", help=".safetensors, or .pt/.pth (read with weights_only=True)")
    port.add_argument("--spec", required=True)
    port.add_argument("-o", "--output", required=True, help="the mapped weights, as .safetensors")
    port.add_argument("--verify", metavar="ZOO:NAME", help="check outputs against torchvision:NAME or timm:NAME")
    port.add_argument("--keep", action="append", metavar="PATTERN",
                      help="map only the checkpoint's tensors whose names match this glob (repeatable)")
    port.add_argument("--drop", action="append", metavar="PATTERN",
                      help="leave out the checkpoint's tensors whose names match this glob, e.g. 'fc.*' (repeatable)")
    spec_options(port)
    add("blocks", cmd_blocks, "list primitives and composite blocks with their params")
    lister = add("list", cmd_list, "list the specs found by name (ARCHSPEC_PATH folders, then the shipped specs)")
    lister.add_argument("pattern", nargs="?", help="a glob (resnet*) or a part of the name (osnet)")
    lister.add_argument("--json", action="store_true", help="machine-readable rows")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "output", None) is not None:  # refuse a path we will not write before doing the work
            from archspec.atomic import check_output

            check_output(args.output)
        return args.fn(args)
    except ArchspecError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the promise is: never a traceback
        where = getattr(args, "spec", None)
        where = f"{where if isinstance(where, str) else ' '.join(where)}: " if where else ""
        print(f"{where}archspec: internal error: {type(exc).__name__}: {str(exc)[:300]}\n"
              "  hint: this is a bug in archspec; please report it with the spec that caused it",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
