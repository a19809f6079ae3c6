"""Composite blocks shipped as YAML. They are read once, validated like any spec file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from archspec.errors import SpecError, did_you_mean
from archspec.source import Located
from archspec.spec.models import BlockDef
from archspec.spec.params import check_value

BLOCK_DIR = Path(__file__).parent


@lru_cache(maxsize=1)
def shipped_blocks() -> dict[str, tuple[BlockDef, Located]]:
    from archspec.ops import REGISTRY
    from archspec.spec.loader import load_block_file

    blocks: dict[str, tuple[BlockDef, Located]] = {}
    for path in sorted(BLOCK_DIR.glob("*.yaml")):
        block, located = load_block_file(path)
        if block.block in blocks or block.block in REGISTRY:
            raise SpecError(f"block {block.block!r} is defined twice", located.loc(("block",)),
                            code="schema.duplicate_block")
        blocks[block.block] = (block, located)
    return resolve_variants(blocks)


def resolve_variants(blocks: dict[str, tuple[BlockDef, Located]]) -> dict[str, tuple[BlockDef, Located]]:
    """A block with `extends: BASE` is BASE with other param defaults (SEBottleneck = Bottleneck, se on)."""
    resolved = dict(blocks)
    for name, (block, located) in blocks.items():
        if block.extends is None:
            if not block.nodes:
                raise SpecError(f"block {name!r} has no nodes", located.loc(("block",)), code="schema.block_empty")
            continue
        base_entry = blocks.get(block.extends)
        if base_entry is None or base_entry[0].extends is not None:
            raise SpecError(f"block {name!r} extends {block.extends!r}, which is not a plain block",
                            located.loc(("extends",)), did_you_mean(block.extends, blocks), code="schema.block_extends")
        base, base_located = base_entry
        params = dict(base.params)
        for key, value in block.defaults.items():
            decl = params.get(key)
            problem = "unknown param" if decl is None else check_value(decl, value)
            if problem:
                raise SpecError(f"{name}.defaults.{key}: {problem}", located.loc(("defaults", key)),
                                did_you_mean(key, params), code="schema.block_defaults")
            params[key] = decl.model_copy(update={"default": value})
        merged = base.model_copy(update={"block": name, "doc": block.doc or base.doc, "params": params,
                                         "extends": None, "defaults": {}})
        resolved[name] = (merged, base_located)
    return resolved
