"""Specs by name: the folders of `ARCHSPEC_PATH`, then the specs shipped with archspec. No torch.

A spec argument that names an existing file is that file. Otherwise a bare name (`osnet_x1_0`: letters,
digits and `_`, no folder, no suffix) is looked up as `NAME.yaml` in each folder of `ARCHSPEC_PATH` (in its
order, separated by `os.pathsep`), then among the shipped specs. Anything else is used as a path.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import ArchspecError, Location, SpecError, did_you_mean

BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ENV_PATH = "ARCHSPEC_PATH"
PACKAGE_SPECS = Path(__file__).parent / "specs"  # in an installed wheel (the build copies specs/ here)
SOURCE_SPECS = Path(__file__).parent.parent / "specs"  # in a source checkout or an editable install


def shipped_dir() -> Path | None:
    """The folder of the shipped specs: inside the package when installed, else the checkout's `specs/`."""
    for folder in (PACKAGE_SPECS, SOURCE_SPECS):
        if folder.is_dir():
            return folder
    return None


def search_path() -> list[tuple[Path, str]]:
    """(folder, origin) in lookup order: each `ARCHSPEC_PATH` folder, then the shipped specs."""
    folders = [(Path(p), ENV_PATH) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p.strip()]
    shipped = shipped_dir()
    if shipped is not None:
        folders.append((shipped, "shipped"))
    return folders


def _candidates() -> dict[str, tuple[Path, str]]:
    """Every spec name the search path offers, mapped to the file it resolves to (the first folder wins)."""
    found: dict[str, tuple[Path, str]] = {}
    for folder, origin in search_path():
        try:
            files = sorted(folder.glob("*.yaml"))
        except OSError:
            continue
        for file in files:
            if BARE_NAME.fullmatch(file.stem) and file.stem not in found:
                found[file.stem] = (file, origin)
    return found


def resolve(spec: str | Path) -> Path:
    """The file a spec argument names: an existing path as it is, else a bare name on the search path."""
    path = Path(spec)
    if isinstance(spec, Path) or os.path.lexists(path) or not BARE_NAME.fullmatch(str(spec)):
        return path
    for folder, _ in search_path():
        candidate = folder / f"{spec}.yaml"
        if os.path.lexists(candidate):
            return candidate
    names = list(_candidates())
    raise SpecError(f"no file {str(spec)!r} and no spec of that name on the search path", Location(str(spec)),
                    did_you_mean(str(spec), names) or f"`archspec list` shows the {len(names)} specs found "
                    f"({ENV_PATH} folders, then the shipped specs)", code="io.unknown_spec")


@dataclass(frozen=True)
class SpecInfo:
    """One row of `archspec list`."""

    name: str
    file: str
    origin: str  # "shipped" or "ARCHSPEC_PATH"
    params: int | None = None
    macs: int | None = None
    input: tuple[int, ...] | None = None
    reference: str = ""
    pretrained: tuple[str, ...] = ()
    error: str = ""


def _matches(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _reference(model) -> str:
    text = model.citation or model.description
    return " ".join(text.split())


def _info(name: str, file: Path, origin: str) -> SpecInfo:
    import archspec

    try:
        spec = archspec.parse(file)
        graph = archspec.compile(spec)
    except ArchspecError as exc:
        return SpecInfo(name, str(file), origin, error=f"{exc.message.splitlines()[0]} [{exc.code}]")
    return SpecInfo(name, str(file), origin, graph.total_params, graph.total_macs("eval"), graph.input_shape,
                    _reference(spec.model), tuple(spec.model.weights))


def list_specs(pattern: str | None = None) -> list[SpecInfo]:
    """The specs on the search path whose name matches `pattern` (a glob, or a substring), sorted by name.
    A spec that does not compile is listed with its error. Never imports torch."""
    return [_info(name, file, origin) for name, (file, origin) in sorted(_candidates().items())
            if _matches(name, pattern)]


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


def render(infos: list[SpecInfo], width: int = 72) -> str:
    """The `archspec list` table: name, params, MACs (eval, batch 1), input, weights tags and reference."""
    rows = [("name", "params", "MACs", "input", "pretrained", "reference")]
    for info in infos:
        shape = "x".join(map(str, info.input)) if info.input else "-"
        reference = info.error or info.reference
        if len(reference) > width:
            reference = reference[: width - 3] + "..."
        if info.origin != "shipped":
            reference += f"  [{info.file}]"
        rows.append((info.name, _count(info.params), _count(info.macs), shape, ",".join(info.pretrained) or "-",
                     reference))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[5] for row in rows) + "\n"
