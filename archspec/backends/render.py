"""Writing a diagram: DOT text needs nothing; other formats run Graphviz's `dot` with a timeout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import graphviz

from archspec.atomic import write_atomic
from archspec.errors import ArchspecError, Location

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
                "or `conda install graphviz`; `--format dot` works without it")


class RenderError(ArchspecError):
    code = "draw.render"


DOT_MEMORY = 2 << 30  # `dot` runs under this address-space limit (and a CPU limit of the timeout)


def _limit_dot(seconds: float):
    def apply() -> None:
        import resource

        for kind, value in ((resource.RLIMIT_AS, DOT_MEMORY), (resource.RLIMIT_CPU, int(seconds) + 1)):
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, hard))
    return apply


class UsageRenderError(RenderError):
    exit_code = 2


def render_bytes(dot: graphviz.Digraph, fmt: str, timeout: float = 60.0, where: str | None = None) -> bytes:
    """`where` names the spec the diagram is of, so that a refusal points at it."""
    at = Location(where or "<draw>", 0, 0)
    if fmt == "dot":
        return dot.source.encode("utf-8")
    binary = shutil.which("dot")
    if binary is None:
        raise RenderError(f"rendering {fmt} needs the Graphviz `dot` program, which is not on PATH",
                          at, INSTALL_HINT, code="draw.no_graphviz")
    try:
        proc = subprocess.run([binary, f"-T{fmt}"], input=dot.source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False,
                              preexec_fn=_limit_dot(timeout) if sys.platform.startswith("linux") else None)
    except subprocess.TimeoutExpired:
        raise RenderError(f"`dot` took longer than {timeout:.0f} s", at,
                          "draw at a smaller --depth", code="draw.timeout") from None
    except OSError as exc:
        raise RenderError(f"cannot run `dot`: {exc.strerror or exc}", at, INSTALL_HINT,
                          code="draw.no_graphviz") from None
    if proc.returncode != 0:
        raise RenderError(f"`dot` failed: {proc.stderr.decode('utf-8', 'replace')[:300]}", at, code="draw.render")
    return proc.stdout


def write(dot: graphviz.Digraph, path: str | Path, fmt: str | None = None, timeout: float = 60.0,
          where: str | None = None) -> str:
    """Render `dot` to `path` atomically. The format defaults to the file's suffix. Returns the format."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower() or "svg"
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:  # a usage error (exit 2): the -o suffix or --format names no format we write
        raise UsageRenderError(f"unknown format {fmt[:20]!r}", Location(str(path)), f"use one of {', '.join(FORMATS)}",
                          code="draw.format")
    write_atomic(path, render_bytes(dot, fmt, timeout, where))
    return fmt
