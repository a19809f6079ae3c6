"""Spec stage: located data to a validated Spec (pydantic), with variants and overrides."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from archspec.errors import ErrorGroup, SpecError, did_you_mean, short_repr
from archspec.source import LoaderLimits, Located, load_file, load_text
from archspec.spec.models import BlockDef, SpecFile, VariantFile
from archspec.spec.params import check_value, coerce

MAX_EXTENDS = 8


@dataclass
class Spec:
    """A validated spec: the model, its source positions and the resolved params."""

    model: SpecFile
    source: Located
    params: dict[str, Any]
    param_sources: dict[str, Located] = field(default_factory=dict)
    declared_input: tuple[int, ...] | None = None  # set when `--input` / `input=` replaced the spec's input
    weights_source: Located | None = None  # the file whose `weights:` the spec has (a variant's own)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def file(self) -> str:
        return self.source.file


def pydantic_errors(exc: ValidationError, located: Located, prefix: tuple = ()) -> ErrorGroup:
    """Map pydantic errors to located SpecErrors; union tags in `loc` are skipped by walking the data."""
    errors = []
    for err in exc.errors(include_url=False):
        path = _data_path(located.data, prefix, err["loc"])
        kind = err["type"]
        message, hint = _describe(err, path)
        where = located.loc(path, prefer_key=kind == "extra_forbidden")
        errors.append(SpecError(message, where, hint, code=f"schema.{kind}"))
    return ErrorGroup(errors)


def _data_path(data: Any, prefix: tuple, loc: tuple) -> tuple:
    node = data
    for part in prefix:
        node = node[part]
    path = list(prefix)
    for i, part in enumerate(loc):
        if _is_union_tag(node, loc, i):
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part == "from_" and "from" in node:
            node = node["from"]
            path.append("from")
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part not in ("block", "seq", "call") \
                and not any(c in part for c in "[]()"):
            path.append(part)  # a missing key: point at its parent mapping
            break
    return tuple(path)


def _is_union_tag(node: Any, loc: tuple, i: int) -> bool:
    """pydantic puts a node's union tag (block, call, seq) in `loc`; the tag is also a key of the node."""
    part = loc[i]
    if part not in ("block", "call", "seq") or not isinstance(node, dict):
        return False
    if i + 1 == len(loc) or loc[i + 1] == part:
        return True
    value = node.get(part)  # the key's own value: a str (block, call) or a list of items (seq)
    return isinstance(value, str) or isinstance(value, list) and not isinstance(loc[i + 1], int)


def _describe(err: dict, path: tuple) -> tuple[str, str]:
    kind = err["type"]
    field_name = path[-1] if path else ""
    if kind == "extra_forbidden":
        return f"unknown key {field_name!r}", ""
    if kind == "missing":
        return f"missing required key {err['loc'][-1]!r}", ""
    if isinstance(err.get("input"), dict):  # a whole node: the location shows it
        return err["msg"], ""
    return f"{err['msg']} (got {short_repr(err.get('input'))})", ""


def _validate(model: type[BaseModel], located: Located, prefix: tuple = ()) -> Any:
    data = located.data
    for part in prefix:
        data = data[part]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        group = pydantic_errors(exc, located, prefix)
        _add_key_hints(group, model, located)
        raise group from None


def _add_key_hints(group: ErrorGroup, model: type[BaseModel], located: Located) -> None:
    for error in group.errors:
        if error.code == "schema.extra_forbidden" and error.location.path:
            key = error.location.path[-1]
            known = _known_keys(located.data, error.location.path[:-1], model)
            if " " in str(key):
                error.hint = ("a comma inside a {flow: mapping} ends the value; quote text that has commas: "
                              'doc: "a, b"')
            else:
                error.hint = did_you_mean(key, known) or "remove it, or check the docs for the keys allowed here"


def _known_keys(data: Any, path: tuple, model: type[BaseModel]) -> list[str]:
    from archspec.spec import models as m

    if len(path) == 0:
        return [f.alias or n for n, f in model.model_fields.items()]
    for candidate in (m.SeqNode, m.UseNode, m.CallNode, m.ParamDecl, m.Table, m.ModeOutputs, m.InitRule):
        keys = [f.alias or n for n, f in candidate.model_fields.items()]
        node = data
        for part in path:
            node = node[part]
        if isinstance(node, dict) and all(k in keys for k in node if k != path[-1]):
            return keys
    return []


def _not_a_mapping(located: Located, what: str) -> SpecError:
    return SpecError(f"a {what} is a YAML mapping at the top level", located.loc(()),
                     "start the file with `archspec: 1`", code="schema.not_a_mapping")


def load_block_file(path: Path, limits: LoaderLimits | None = None) -> tuple[BlockDef, Located]:
    located = load_file(path, limits)
    if not isinstance(located.data, dict):
        raise _not_a_mapping(located, "block file")
    return _validate(BlockDef, located), located


def parse(path: str | Path, overrides: dict[str, Any] | None = None,
          limits: LoaderLimits | None = None, text: str | None = None) -> Spec:
    """Load, validate and resolve a spec file (following `extends`), applying param overrides."""
    if text is None:
        from archspec.catalog import resolve

        path = resolve(path)  # an existing file, else a spec name on ARCHSPEC_PATH or shipped
    path = Path(path)
    located = load_text(text, str(path), limits) if text is not None else load_file(path, limits)
    chain: list[Located] = []
    named: VariantFile | None = None
    root = _real(path.parent)  # `extends` stays inside this folder's tree, symlinks resolved
    seen = {str(_real(path))}
    while isinstance(located.data, dict) and "extends" in located.data and len(chain) < MAX_EXTENDS:
        variant = _validate(VariantFile, located) if _is_variant(located) else None
        if variant is None:
            break
        named = named or variant
        chain.append(located)
        base_path = _resolve_extends(path, variant.extends, located, root)
        if str(_real(base_path)) in seen:
            raise SpecError("`extends` forms a cycle", located.loc(("extends",)), code="schema.extends_cycle")
        seen.add(str(_real(base_path)))
        path = base_path
        located = load_file(path, limits)
    if chain and len(chain) >= MAX_EXTENDS:
        raise SpecError("too many levels of `extends`", chain[-1].loc(("extends",)), code="schema.extends_depth")
    if not isinstance(located.data, dict):
        raise _not_a_mapping(located, "spec")
    model = _validate(SpecFile, located)
    spec = _resolve(model, located, chain, overrides or {})
    spec.weights_source = located
    if named is not None:  # a variant is another network: the base's checkpoints are not its own
        spec.model = spec.model.model_copy(update={"weights": named.weights})
        spec.weights_source = chain[0]
    return spec


def _is_variant(located: Located) -> bool:
    return "nodes" not in located.data


def _real(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError, RuntimeError):
        return Path(os.path.abspath(path))


def _resolve_extends(path: Path, target: str, located: Located, root: Path) -> Path:
    pure = PurePosixPath(target)
    if pure.is_absolute() or ".." in pure.parts or not target.endswith((".yaml", ".yml")) or "\\" in target:
        raise SpecError(f"`extends` must name a .yaml file beside this one, got {short_repr(target)}",
                        located.loc(("extends",)), "write e.g. `extends: osnet_x1_0.yaml`",
                        code="schema.extends_path")
    base = path.parent / pure
    real = _real(base)
    if not real.is_relative_to(root):  # a symlink that leads out of the spec's folder tree
        raise SpecError(f"`extends` names {short_repr(target)}, which leads outside the spec's folder "
                        "(through a symbolic link)", located.loc(("extends",)),
                        "copy the base spec into the folder", code="schema.extends_path")
    if not os.path.lexists(base):
        siblings = [p.name for p in path.parent.glob("*.yaml")]
        raise SpecError(f"`extends` names {short_repr(target)}, which does not exist",
                        located.loc(("extends",)), did_you_mean(target, siblings), code="schema.extends_missing")
    if not real.is_file():  # a FIFO would hang the read; load_file checks again on the open descriptor
        raise SpecError(f"`extends` names {short_repr(target)}, which is not a regular file",
                        located.loc(("extends",)), "name a .yaml file", code="io.not_a_file")
    return base


def _resolve(model: SpecFile, located: Located, chain: list[Located], overrides: dict) -> Spec:
    params: dict[str, Any] = {}
    sources: dict[str, Located] = {}
    errors = []
    for name, decl in model.params.items():
        if decl.default is not None:
            problem = check_value(decl, decl.default)
            if problem:
                errors.append(SpecError(f"default of param {name!r}: {problem}",
                                        located.loc(("params", name, "default")), code="schema.param_type"))
            params[name] = coerce(decl, decl.default)
            sources[name] = located
    header: dict[str, Any] = {}
    for variant in reversed(chain):  # the base first, the outermost variant last
        _apply(model, params, sources, variant.data.get("params", {}), variant, ("params",), errors)
        for key in HEADER_KEYS:
            if key in variant.data:
                header[key] = _check_header(key, variant.data[key], variant, errors)
    _apply(model, params, sources, overrides, None, (), errors)
    for name in model.params:
        if name not in params:
            errors.append(SpecError(f"param {name!r} has no default and was not set",
                                    located.loc(("params", name)), f"pass --set {name}=VALUE",
                                    code="schema.param_missing"))
    if errors:
        raise ErrorGroup(errors)
    if header:
        model = model.model_copy(update=header)
    return Spec(model, located, params, sources)


HEADER_KEYS = ("name", "description", "citation", "input")


@functools.cache
def _header_adapter(key: str) -> TypeAdapter:
    info = SpecFile.model_fields[key]
    return TypeAdapter(Annotated[info.annotation, info])


def _check_header(key: str, value: Any, located: Located, errors: list) -> Any:
    """A value a variant overrides is checked against the base's schema (SpecFile's field), at the variant."""
    try:
        return _header_adapter(key).validate_python(value)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = (key, *err["loc"])
            message, _ = _describe(err, path)
            errors.append(SpecError(message, located.loc(path), "the variant's value must fit the base spec's schema",
                                    code=f"schema.{err['type']}"))
        return None


def _apply(model: SpecFile, params: dict, sources: dict, values: dict, located: Located | None,
           prefix: tuple, errors: list) -> None:
    from archspec.errors import Location

    for name, value in values.items():
        where = located.loc(prefix + (name,), prefer_key=True) if located else Location("<override>", 0, 0, (name,))
        decl = model.params.get(name)
        if decl is None:
            errors.append(SpecError(f"unknown param {name!r}", where,
                                    did_you_mean(name, model.params) or f"params: {', '.join(model.params)}",
                                    code="schema.unknown_param"))
            continue
        problem = check_value(decl, value)
        if problem:
            errors.append(SpecError(f"param {name!r}: {problem}", where, code="schema.param_type"))
            continue
        params[name] = coerce(decl, value)
        if located:
            sources[name] = located


def override_input(spec: Spec, shape: Any) -> Spec:
    """The spec with its input replaced by `shape` (C,H,W or C), checked as the spec's own `input:` is.
    Lowering then says, in each shape error, that the input was overridden."""
    from archspec.errors import Location

    try:
        value = _header_adapter("input").validate_python(list(shape) if isinstance(shape, tuple) else shape)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        message, _ = _describe(err, ("input", *err["loc"]))
        raise SpecError(f"the input override: {message}", Location("<input>", 0, 0, ("input",)),
                        "give 1 to 3 sizes from 1 to 65,536, e.g. input=(3, 224, 224)",
                        code=f"schema.{err['type']}") from None
    declared = spec.declared_input or tuple(spec.model.input)
    model = spec.model.model_copy(update={"input": value})
    return Spec(model, spec.source, spec.params, spec.param_sources, declared)


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as a YAML scalar or flow list (`--set layers=[2,2,2]`)."""
    from archspec.errors import Location

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set expects KEY=VALUE, got {short_repr(text)}", Location("<override>", 0, 0),
                        "for example --set num_classes=751", code="usage.set")
    value = load_text(raw or "''", f"--set {key.strip()}").data
    return key.strip(), value
