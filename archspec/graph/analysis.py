"""Analyses of the typed graph that refuse specs which would build something other than they say."""

from __future__ import annotations

from archspec.errors import ErrorGroup, GraphError
from archspec.graph.ir import TypedGraph


def check_dead_modules(tg: TypedGraph) -> None:
    """A module with parameters that no call reaches, in either mode, is an error unless it is `hold: true`.

    Such weights would exist (and load from a checkpoint) while the forward ignores them: nearly always a
    wiring mistake, such as a branch whose output nothing reads. The outermost dead module is reported.
    """
    reached: set[str] = set()
    for node in tg.live("train") | tg.live("eval"):
        path = tg.call(node).module
        while path:  # the module and every container above it
            reached.add(path)
            path = path.rpartition(".")[0]
    weights = _params_below(tg)
    errors, reported = [], []
    for path, decl in tg.modules.items():
        if path in reached or decl.held or weights[path] == 0 or any(path.startswith(r + ".") for r in reported):
            continue
        reported.append(path)
        errors.append(GraphError(
            f"{path!r} has {weights[path]:,} parameters, but no call in either mode reaches it", decl.where,
            "wire its output into the network (`from:` or `outputs:`), remove it, or mark it `hold: true` "
            "if it is kept only for its weights", code="graph.dead_module"))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ErrorGroup(errors)


def _params_below(tg: TypedGraph) -> dict[str, int]:
    """Parameter count of each module and everything under it (held leaves excluded)."""
    total = dict.fromkeys(tg.modules, 0)
    for path, decl in tg.modules.items():
        if decl.kind != "leaf" or decl.held:
            continue
        while path:
            if path in total:
                total[path] += decl.param_count
            path = path.rpartition(".")[0]
    return total
