"""Composite blocks shipped as YAML. They are read once, validated like any spec file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from archspec.errors import SpecError
from archspec.source import Located
from archspec.spec.models import BlockDef

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
    return blocks
