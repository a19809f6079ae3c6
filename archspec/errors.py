"""One small error hierarchy. Every user-facing error carries a Location and a stable code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    file: str = "<spec>"
    line: int = 0
    col: int = 0
    path: tuple = field(default_factory=tuple)

    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "<root>"

    @property
    def file_level(self) -> bool:
        """An error about a whole file (it cannot be read, its weights do not fit): no line to point at."""
        return self.line <= 0

    def __str__(self) -> str:
        return self.file if self.file_level else f"{self.file}:{self.line}:{self.col}"


class ArchspecError(Exception):
    """Base class. `code` is stable and documented; `hint` tells the user what to do."""

    code = "archspec.error"
    exit_code = 1

    def __init__(self, message: str, location: Location | None = None, hint: str = "",
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location or Location()
        self.hint = hint
        if code:
            self.code = code

    def format(self) -> str:
        loc = self.location
        where = f"{loc}: " if loc.file_level and not loc.path else f"{loc}: {loc.dotted()}: "
        text = f"{where}{self.message} [{self.code}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict:
        loc = self.location
        return {"code": self.code, "file": loc.file, "line": loc.line, "col": loc.col,
                "path": loc.dotted(), "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        return self.format()


class SourceError(ArchspecError):
    code = "yaml.invalid"


class SpecError(ArchspecError):
    code = "schema.invalid"


class GraphError(ArchspecError):
    code = "graph.invalid"


class ShapeError(ArchspecError):
    code = "shape.mismatch"


class LimitError(ArchspecError):
    code = "limit.exceeded"
    exit_code = 3


class ErrorGroup(ArchspecError):
    """Several independent errors found in one pass."""

    code = "multiple"

    def __init__(self, errors: list[ArchspecError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.message, first.location, first.hint, first.code)
        self.exit_code = max(e.exit_code for e in errors)

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


def short_repr(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.6)
    if not matches:
        return ""
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
