"""Argument binding rules shared by the pre-check and lowering: which args a primitive or block takes, and one
located error for each arg it does not take. One implementation, so both report a mistake the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from archspec.errors import Location, SpecError, did_you_mean
from archspec.ops import REGISTRY


def accepted_args(name: str, blocks: dict) -> list[str] | None:
    """The params of primitive or block `name` (None: no such primitive or block)."""
    if name in REGISTRY:
        return list(REGISTRY[name].Args.model_fields)
    if name in blocks:
        return list(blocks[name][0].params)
    return None


def unknown_arg_errors(name: str, accepted: Iterable[str], keys: Iterable[str], locate: Callable[[str], Location],
                       hint: Callable[[str], str] = lambda text: text) -> list[SpecError]:
    """One error per key that `name` does not take, located at the key, with a "did you mean" hint."""
    if all(key in accepted for key in keys):  # the common case: nothing to report, nothing to build
        return []
    accepted = list(accepted)
    return [SpecError(f"{name} has no param {key!r}", locate(key),
                      hint(did_you_mean(key, accepted) or f"its params: {', '.join(accepted) or 'none'}"),
                      code="schema.extra_forbidden")
            for key in keys if key not in accepted]
