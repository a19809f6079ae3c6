"""Output formats of `draw` and `export`: read from `--format` and the `-o` suffix, which must agree.

No torch and no graphviz here, so a contradiction is refused (exit 2) before anything is read.
"""

from __future__ import annotations

from pathlib import Path

from archspec.errors import ArchspecError, Location

DRAW_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
EXPORT_SUFFIXES = {".onnx": "onnx", ".pt2": "exported", ".pt": "torchscript", ".py": "python"}
SUFFIXES = {"draw": DRAW_SUFFIXES, "export": EXPORT_SUFFIXES}


class FormatError(ArchspecError):
    """`--format` and the `-o` suffix disagree, or neither names a format: a usage error."""

    code = "export.format"
    exit_code = 2


def pick_format(command: str, output: str | Path | None, fmt: str | None, default: str | None = None) -> str:
    """The format to write: `fmt` when given, else the one the suffix of `output` names, else `default`.

    A suffix that names another format than `fmt` is refused (`draw.format` / `export.format`, exit 2);
    a suffix that names no format is accepted only with an explicit `fmt`.
    """
    table = SUFFIXES[command]
    suffix = Path(output).suffix.lower() if output is not None else ""
    named = table.get(suffix)
    code = f"{command}.format"
    where = Location(str(output) if output is not None else "<stdout>")
    if fmt is not None and named is not None and fmt != named:
        raise FormatError(f"the suffix {suffix} means {named}, but --format says {fmt}", where,
                          f"name the file *{_suffix_of(table, fmt)}, or drop --format", code=code)
    chosen = fmt or named or (default if not suffix else None)
    if chosen is None:
        known = ", ".join(f"{s} ({f})" for s, f in table.items())
        raise FormatError(f"cannot tell the format from the name {Path(str(output)).name[:60]!r}", where,
                          f"pass --format, or use one of the suffixes {known}", code=code)
    return chosen


def _suffix_of(table: dict[str, str], fmt: str) -> str:
    return next((s for s, f in table.items() if f == fmt), "")
