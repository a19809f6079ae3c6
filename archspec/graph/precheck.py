"""A static pass before lowering that finds every unknown block and unknown block arg in a spec at once,
so that several independent mistakes are reported together (lowering stops at its first error). Args are
checked by `binding`, as lowering checks them; lowering checks again only where a param picks the block."""

from __future__ import annotations

from archspec.errors import ErrorGroup, SpecError, did_you_mean
from archspec.graph.binding import accepted_args, unknown_arg_errors
from archspec.ops import REGISTRY
from archspec.spec.models import CallNode, SeqNode


def check_nodes(nodes: list, path: tuple, located, blocks: dict, names: set[str], errors: list) -> None:
    for i, node in enumerate(nodes):
        here = path + (i,)
        if isinstance(node, SeqNode):
            check_nodes(node.seq, here + ("seq",), located, blocks, names, errors)
        elif isinstance(node, CallNode):
            check_call(node, here, located, blocks, names, errors)


def check_call(node: CallNode, here: tuple, located, blocks: dict, names: set[str], errors: list) -> None:
    params = accepted_args(node.block, blocks)
    if params is None:
        if node.block not in names:  # a str param or let value may pick the block; lowering checks it
            hint = did_you_mean(node.block, sorted(set(REGISTRY) | set(blocks))) or "run `archspec blocks`"
            errors.append(SpecError(f"unknown block {node.block!r}", located.loc(here + ("block",)), hint,
                                    code="schema.unknown_block"))
        return
    errors += unknown_arg_errors(node.block, params, node.args, lambda key: located.loc(here + (key,), prefer_key=True))


def precheck(spec, blocks: dict) -> None:
    errors: list = []
    model = spec.model
    top_names = set(model.params) | set(model.let)
    check_nodes(model.nodes, ("nodes",), spec.source, blocks, top_names, errors)
    for name, block in model.blocks.items():
        block_names = set(block.params) | set(block.let)
        check_nodes(block.nodes, ("blocks", name, "nodes"), spec.source, blocks, block_names, errors)
    if len(errors) > 1:
        raise ErrorGroup(errors)
    if errors:
        raise errors[0]


__all__ = ["precheck"]
