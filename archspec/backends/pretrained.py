"""`load(spec, pretrained=TAG)`: the checkpoint a spec declares under `weights:`, fetched, verified, loaded.

The file's SHA-256 is checked (archspec.download) before any byte of it is unpickled; it is then read by the
safe, checked reader of archspec.backends.weights. How its tensors reach the spec is the entry's to say:
`drop` patterns remove tensors first (a classifier the spec does not have), then `port: names` loads by name,
strictly, and `port: order` maps position by position, every shape and dtype checked (archspec.backends.port).
"""

from __future__ import annotations

import torch

from archspec.backends import weights
from archspec.backends.port import map_by_order, select
from archspec.download import MAX_DOWNLOAD, fetch
from archspec.errors import Location, did_you_mean
from archspec.graph.ir import TypedGraph


def _where(graph: TypedGraph, *path: str | int) -> Location:
    source = graph.weights_source
    return source.loc(tuple(path)) if source is not None else Location(graph.file)


def entry_for(graph: TypedGraph, tag: str):  # noqa: ANN201 - a WeightsEntry
    entry = graph.weights.get(tag)
    if entry is not None:
        return entry
    if not graph.weights:
        raise weights.WeightsError(f"spec {graph.name!r} declares no pretrained weights", _where(graph),
                                   "add a `weights:` mapping to the spec, or load a file with --weights",
                                   code="weights.unknown_tag")
    raise weights.WeightsError(f"spec {graph.name!r} has no weights tagged {tag!r}", _where(graph, "weights"),
                               did_you_mean(tag, graph.weights) or f"tags: {', '.join(graph.weights)}",
                               code="weights.unknown_tag")


def load_pretrained(model: torch.nn.Module, graph: TypedGraph, tag: str, max_bytes: int = MAX_DOWNLOAD) -> None:
    """Fetch (or find in the cache), verify and load the checkpoint tagged `tag` into `model`."""
    entry = entry_for(graph, tag)
    path = fetch(entry, _where(graph, "weights", tag, "url"), _where(graph, "weights", tag, "sha256"), max_bytes)
    if entry.port == "names" and not entry.drop:
        weights.load_weights(model, path, graph)
        return
    state = select(weights.read_state(path), drop=entry.drop)
    if entry.port == "order":
        state = map_by_order(state, model.state_dict(), str(path))
    weights.check(model, {k: (tuple(v.shape), v.dtype) for k, v in state.items()}, graph, path)
    model.load_state_dict(state, strict=True)
