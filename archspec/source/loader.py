"""Strict YAML loading.

We read YAML as a stream of parser events and build the data ourselves, so that:
- no YAML composer or constructor ever runs: PyYAML's C loader crashes in its recursive composer
  on ~50 KB of `[[[`, and constructors are where tags turn into objects. libyaml is used only as an
  event source (10x faster than the pure-Python parser, which is the fallback); it yields events on
  demand, and our depth limit stops a nesting bomb after 64 levels;
- every key and value keeps its position;
- duplicate keys, merge keys, anchors, aliases and tags are refused before anything is built;
- scalars follow YAML 1.2 core rules (`no`/`on` stay strings, `010` is ten, no dates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from yaml import events as ev

from archspec.errors import Location, SourceError, short_repr


@dataclass(frozen=True)
class LoaderLimits:
    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_nodes: int = 200_000
    max_scalar: int = 10_000
    max_int_digits: int = 20
    use_libyaml: bool = True


def event_parser(text: str, use_libyaml: bool = True):
    """An object with check_event/get_event/dispose; we never call its compose or construct methods."""
    if use_libyaml and getattr(yaml, "__with_libyaml__", False):
        from yaml._yaml import CParser

        return CParser(text)
    return yaml.SafeLoader(text)


@dataclass
class Located:
    """Plain data plus the position of each value (and of each mapping key) by path."""

    data: object
    file: str
    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)

    def loc(self, path: tuple = (), prefer_key: bool = False) -> Location:
        path = tuple(path)
        for cut in range(len(path), -1, -1):
            sub = path[:cut]
            table = (self.keys, self.values) if prefer_key or cut < len(path) else (self.values, self.keys)
            for positions in table:
                if sub in positions:
                    line, col = positions[sub]
                    return Location(self.file, line, col, path)
        return Location(self.file, 1, 1, path)


_INT = re.compile(r"[-+]?[0-9]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_OCT = re.compile(r"0o[0-7]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NONFINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
# YAML's printable set (the YAML 1.2 spec, 5.1): anything else is refused before parsing
_NONPRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def _resolve_plain(text: str, where: Location, limits: LoaderLimits) -> object:
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    digits = text.lstrip("+-")
    if _INT.fullmatch(text) or _HEX.fullmatch(text) or _OCT.fullmatch(text):
        if len(digits) > limits.max_int_digits:
            raise SourceError(f"integer with {len(digits)} digits is too long", where,
                              f"integers may have at most {limits.max_int_digits} digits",
                              code="yaml.int_too_long")
        return int(text, 0) if text[:2] in ("0x", "0o") else int(text, 10)
    if _FLOAT.fullmatch(text):
        if len(digits) > 64:
            raise SourceError("number literal is too long", where, code="yaml.int_too_long")
        return float(text)
    if _NONFINITE.fullmatch(text):
        raise SourceError(f"{text} is not allowed", where, "specs hold finite numbers only",
                          code="yaml.nonfinite")
    return text


class _Builder:
    def __init__(self, file: str, limits: LoaderLimits):
        self.file = file
        self.limits = limits
        self.out = Located(None, file)
        self.stack: list[list] = []  # frames: [container, path, pending_key, key_mark]
        self.count = 0

    def where(self, mark, path=()) -> Location:
        return Location(self.file, mark.line + 1, mark.column + 1, tuple(path))

    def check_node(self, event) -> None:
        self.count += 1
        if self.count > self.limits.max_nodes:
            raise SourceError("too many YAML nodes", self.where(event.start_mark),
                              f"a spec may hold at most {self.limits.max_nodes} nodes",
                              code="yaml.too_many_nodes")
        if getattr(event, "anchor", None):
            raise SourceError("anchors and aliases are not allowed",
                              self.where(event.start_mark, self.child_path(event.start_mark)),
                              "write the value out; use a table, repeat or composite block to avoid copies",
                              code="yaml.anchor")
        if getattr(event, "tag", None) and event.tag not in ("!",):
            raise SourceError(f"explicit tag {short_repr(event.tag)} is not allowed",
                              self.where(event.start_mark, self.child_path(event.start_mark)), "remove the tag",
                              code="yaml.tag")

    def child_path(self, mark):
        if not self.stack:
            return ()
        frame = self.stack[-1]
        container, path = frame[0], frame[1]
        if isinstance(container, list):
            return path + (len(container),)
        return path + (frame[2],)

    def _scalar_path(self, mark) -> tuple:
        if self.stack and isinstance(self.stack[-1][0], dict) and self.stack[-1][2] is None:
            return self.stack[-1][1]  # a mapping key: point at its mapping
        return self.child_path(mark)

    def add(self, value, path, mark) -> None:
        self.out.values[path] = (mark.line + 1, mark.column + 1)
        if not self.stack:
            self.out.data = value
            return
        frame = self.stack[-1]
        container = frame[0]
        if isinstance(container, list):
            container.append(value)
        else:
            container[frame[2]] = value
            frame[2] = None

    def scalar(self, event) -> None:
        self.check_node(event)
        if len(event.value) > self.limits.max_scalar:
            raise SourceError(f"scalar is {len(event.value)} characters long",
                              self.where(event.start_mark, self.child_path(event.start_mark)),
                              f"scalars may hold at most {self.limits.max_scalar} characters",
                              code="yaml.scalar_too_long")
        plain = event.style in (None, "")  # the pure-Python parser says None, libyaml says ""
        if not plain:  # a quoted scalar can write any character as an escape ("\e", "\0", "\ud800")
            bad = _NONPRINTABLE.search(event.value)
            if bad:
                raise SourceError(f"control character U+{ord(bad.group()):04X} (written as an escape) is not allowed",
                                  self.where(event.start_mark, self._scalar_path(event.start_mark)),
                                  "remove it; strings may hold tabs, newlines and printable characters only",
                                  code="yaml.control_character")
        if self.stack and isinstance(self.stack[-1][0], dict) and self.stack[-1][2] is None:
            self.mapping_key(event, plain)
            return
        path = self.child_path(event.start_mark)
        where = self.where(event.start_mark, path)
        value = _resolve_plain(event.value, where, self.limits) if plain else event.value
        self.add(value, path, event.start_mark)

    def mapping_key(self, event, plain: bool) -> None:
        frame = self.stack[-1]
        key = event.value
        path = frame[1] + (key,)
        where = self.where(event.start_mark, path)
        if plain and key == "<<":
            raise SourceError("merge keys (<<) are not allowed", where, "write the keys out",
                              code="yaml.merge_key")
        if key in frame[0]:
            first = self.out.keys.get(path, (0, 0))
            raise SourceError(f"duplicate key {short_repr(key)} (first at line {first[0]})", where,
                              "remove one of them; YAML would silently keep the last",
                              code="yaml.duplicate_key")
        frame[2] = key
        self.out.keys[path] = (event.start_mark.line + 1, event.start_mark.column + 1)

    def start(self, event, container) -> None:
        self.check_node(event)
        if self.stack and isinstance(self.stack[-1][0], dict) and self.stack[-1][2] is None:
            raise SourceError("mapping keys must be plain strings", self.where(event.start_mark),
                              code="yaml.complex_key")
        if len(self.stack) >= self.limits.max_depth:
            raise SourceError("nesting is too deep", self.where(event.start_mark),
                              f"specs may nest at most {self.limits.max_depth} levels",
                              code="yaml.too_deep")
        path = self.child_path(event.start_mark)
        self.add(container, path, event.start_mark)
        self.stack.append([container, path, None])

    def end(self) -> None:
        self.stack.pop()


def load_text(text: str | bytes, file: str = "<spec>", limits: LoaderLimits | None = None) -> Located:
    """Parse one YAML document into plain data with positions. Raises SourceError."""
    limits = limits or LoaderLimits()
    raw = text.encode("utf-8") if isinstance(text, str) else text
    where = Location(file, 1, 1)
    if len(raw) > limits.max_bytes:
        raise SourceError(f"file is {len(raw)} bytes", where,
                          f"specs may be at most {limits.max_bytes} bytes", code="yaml.too_large")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(f"not valid UTF-8 at byte {exc.start}", Location(file, line, col),
                          "save the file as UTF-8", code="yaml.encoding") from None
    builder = _Builder(file, limits)
    bad = _NONPRINTABLE.search(decoded)
    if bad:
        line = decoded.count("\n", 0, bad.start()) + 1
        col = bad.start() - (decoded.rfind("\n", 0, bad.start()) + 1) + 1
        raise SourceError(f"control character U+{ord(bad.group()):04X} is not allowed", Location(file, line, col),
                          "remove it; YAML allows tabs, newlines and printable characters only",
                          code="yaml.control_character")
    parser = event_parser(decoded, limits.use_libyaml)
    documents = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            _dispatch(builder, event)
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise SourceError("more than one YAML document", builder.where(event.start_mark),
                                      "a spec file holds exactly one document", code="yaml.multi_document")
                if event.tags:
                    raise SourceError("%TAG directives are not allowed", builder.where(event.start_mark),
                                      code="yaml.tag")
    except yaml.MarkedYAMLError as exc:
        if use_libyaml_deep(exc, limits):  # libyaml scans ahead and stops at its own depth of 1000
            return load_text(raw, file, replace(limits, use_libyaml=False))
        mark = exc.problem_mark or exc.context_mark
        loc = builder.where(mark) if mark else where
        raise SourceError(f"YAML syntax: {exc.problem or exc.context}", loc,
                          "check indentation, colons and brackets", code="yaml.syntax") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"YAML error: {short_repr(str(exc), 120)}", where, code="yaml.syntax") from None
    finally:
        parser.dispose()
    if documents == 0:
        raise SourceError("the file is empty", where, "a spec starts with `archspec: 1`", code="yaml.empty")
    return builder.out


def use_libyaml_deep(exc: Exception, limits: LoaderLimits) -> bool:
    """libyaml reads a flow collection ahead before it yields an event, and stops at its own nesting depth of
    1000; the pure-Python parser, which yields event by event, then finds our depth limit at its place."""
    return limits.use_libyaml and "nesting depth" in str(getattr(exc, "problem", "") or "")


def _dispatch(builder: _Builder, event) -> None:
    if isinstance(event, ev.AliasEvent):
        builder.check_node(type("A", (), {"anchor": "*", "start_mark": event.start_mark})())
    elif isinstance(event, ev.ScalarEvent):
        builder.scalar(event)
    elif isinstance(event, ev.MappingStartEvent):
        builder.start(event, {})
    elif isinstance(event, ev.SequenceStartEvent):
        builder.start(event, [])
    elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
        builder.end()


def read_regular(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file, at most `max_bytes` of them. A FIFO, device, socket or directory is
    refused by a stat before it is opened, and again on the open descriptor (opened without blocking),
    so a FIFO swapped in between cannot hang the read. Raises SourceError (`io.*`, located at the file)."""
    import os
    import stat as st

    where = Location(str(path), 0, 0)
    try:
        info = os.stat(path)
        if not st.S_ISREG(info.st_mode):
            raise SourceError(f"the {what} is not a regular file ({_kind(info.st_mode)})", where,
                              "name a regular file", code="io.not_a_file")
        if info.st_size > max_bytes:
            raise SourceError(f"{what} is {info.st_size} bytes", where,
                              f"at most {max_bytes} bytes are read", code="yaml.too_large")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not st.S_ISREG(os.fstat(fd).st_mode):
                raise SourceError(f"the {what} is not a regular file", where, code="io.not_a_file")
            chunks, size = [], 0
            while size <= max_bytes:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or type(exc).__name__}", where, "check the path",
                          code="io.unreadable") from None
    except ValueError:  # a NUL byte in the path
        raise SourceError("cannot read file: the path is not valid", where, code="io.unreadable") from None
    return b"".join(chunks)


def _kind(mode: int) -> str:
    import stat as st

    for test, name in ((st.S_ISDIR, "a directory"), (st.S_ISFIFO, "a FIFO"), (st.S_ISCHR, "a character device"),
                       (st.S_ISBLK, "a block device"), (st.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def load_file(path: str | Path, limits: LoaderLimits | None = None) -> Located:
    limits = limits or LoaderLimits()
    raw = read_regular(path, limits.max_bytes, "spec file")
    return load_text(raw, str(path), limits)
