"""Writing a diagram: DOT text needs nothing; other formats run Graphviz's `dot` with a timeout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import graphviz

from archspec.atomic import write_atomic
from archspec.errors import ArchspecError, Location

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
                "or `conda install graphviz`; `--format dot` works without it")


class RenderError(ArchspecError):
    code = "draw.render"


def render_bytes(dot: graphviz.Digraph, fmt: str, timeout: float = 60.0) -> bytes:
    if fmt == "dot":
        return dot.source.encode("utf-8")
    binary = shutil.which("dot")
    if binary is None:
        raise RenderError(f"rendering {fmt} needs the Graphviz `dot` program, which is not on PATH",
                          Location("<draw>", 0, 0), INSTALL_HINT, code="draw.no_graphviz")
    try:
        proc = subprocess.run([binary, f"-T{fmt}"], input=dot.source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"`dot` took longer than {timeout:.0f} s", Location("<draw>", 0, 0),
                          "draw at a smaller --depth", code="draw.timeout") from None
    if proc.returncode != 0:
        raise RenderError(f"`dot` failed: {proc.stderr.decode('utf-8', 'replace')[:300]}", Location("<draw>", 0, 0),
                          code="draw.render")
    return proc.stdout


def write(dot: graphviz.Digraph, path: str | Path, fmt: str | None = None, timeout: float = 60.0) -> str:
    """Render `dot` to `path` atomically. The format defaults to the file's suffix. Returns the format."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower() or "svg"
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}", Location("<draw>", 0, 0), f"use one of {', '.join(FORMATS)}",
                          code="draw.format")
    write_atomic(path, render_bytes(dot, fmt, timeout))
    return fmt
