"""archspec: neural-network architectures as YAML block tables, compiled to PyTorch modules.

Importing archspec does not import torch; only `load` and `build` do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import ArchspecError, Location
from archspec.graph.ir import TypedGraph
from archspec.graph.limits import Limits
from archspec.spec.loader import Spec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ArchspecError", "Limits", "Location", "Spec", "TypedGraph", "build", "cli_main", "compile", "draw",
           "list_specs", "load", "optimize", "parse", "save", "summary"]
__version__ = "0.1.0"


Shape = tuple[int, ...] | list[int] | None  # an input size: (C, H, W) or (C,)


def parse(path: str | Path, **overrides: Any) -> Spec:
    """Load and validate a spec file (following `extends`) with param overrides."""
    from archspec.spec.loader import parse as _parse

    return _parse(path, overrides)


def compile(spec: Spec | str | Path, limits: Limits | None = None, input: Shape = None,  # noqa: A001, A002
            **overrides: Any) -> TypedGraph:
    """Lower a spec to the typed graph: shapes, params and MACs of every call. No torch.

    `input=(C, H, W)` replaces the spec's declared input; caps apply to it, and a net that cannot take it
    fails with a located shape error that says the input was overridden.
    """
    from archspec.gcpause import gc_paused
    from archspec.graph.lower import lower

    with gc_paused():
        if not isinstance(spec, Spec):
            spec = parse(spec, **overrides)
        elif overrides:
            raise TypeError("pass overrides to parse() when giving a parsed Spec")
        if input is not None:
            from archspec.spec.loader import override_input

            spec = override_input(spec, input)
        return lower(spec, limits)


def build(graph: TypedGraph, seed: int | None = None, meta: bool = False, limits: Limits | None = None) -> nn.Module:
    """Build the nn.Module of a typed graph; with `seed`, its weights depend only on spec and seed.

    `meta=True` builds on torch's meta device: the module has every shape but allocates nothing.
    `limits.max_build` caps the calls + modules made (checked before torch is imported).
    """
    from archspec.graph.limits import check_build

    check_build(limits or Limits(), graph)
    from archspec.backends.torch_builder import build_module

    return build_module(graph, seed, meta)


def load(path: str | Path, limits: Limits | None = None, seed: int | None = None,
         weights: str | Path | None = None, pretrained: str | None = None, input: Shape = None,  # noqa: A002
         **overrides: Any) -> nn.Module:
    """Spec file or spec name -> a plain torch.nn.Module. Keyword arguments override the spec's params.

    `weights` (.safetensors, .pt, .pth) loads strictly; names, shapes and dtypes are checked first.
    `pretrained` names a checkpoint the spec declares under `weights:`: downloaded into ARCHSPEC_CACHE (or
    found there), its SHA-256 verified, then loaded the way its entry says (by name, or by order).
    `input=(C, H, W)` replaces the declared input (see `compile`).
    """
    if weights is not None and pretrained is not None:
        raise TypeError("pass either weights= or pretrained=, not both")
    graph = compile(path, limits, input, **overrides)
    model = build(graph, seed, limits=limits)
    if weights is not None:
        from archspec.backends.weights import load_weights

        load_weights(model, weights, graph)
    if pretrained is not None:
        from archspec.backends.pretrained import load_pretrained

        load_pretrained(model, graph, pretrained, (limits or Limits()).max_download_bytes)
    return model


def list_specs(pattern: str | None = None) -> list:
    """The specs `load`/`compile` find by name (ARCHSPEC_PATH folders, then the shipped specs), matching
    `pattern` (a glob, or a part of the name): name, file, params, MACs, input, reference. No torch."""
    from archspec.catalog import list_specs as _list

    return _list(pattern)


def optimize(model: nn.Module, mdconv: str = "auto", channels_last: str = "auto") -> nn.Module:
    """An inference build of a built module (eval mode, current weights): BatchNorm folded, dropout and
    identity dropped, split convs merged, channels-last where faster. Same outputs to float32 rounding."""
    from archspec.backends.optimize import optimize as _optimize

    return _optimize(model, mdconv, channels_last)


def save(model: nn.Module, path: str | Path) -> None:
    """Write a model's state_dict as safetensors, atomically."""
    from archspec.backends.weights import save_weights

    save_weights(model, path)


def summary(spec: Spec | TypedGraph | nn.Module | str | Path, depth: int = 2, batch: int = 1,
            input: Shape = None, **overrides: Any) -> str:  # noqa: A002
    """The per-block table that `archspec build` prints, with memory at `batch` in its footer.

    `spec` may also be a module built by archspec (its typed graph is kept on it).
    """
    from archspec.backends.summary import render

    return render(_graph_of(spec, input, overrides), depth, batch)


def draw(spec: Spec | TypedGraph | str | Path, depth: int = 2, rankdir: str = "TB", input: Shape = None,  # noqa: A002
         **overrides: Any):
    """The architecture diagram as a `graphviz.Digraph` (Jupyter displays it). No torch.

    `depth` groups calls by the first `depth` parts of their module path (0: every call), as `summary` does.
    """
    from archspec.backends.diagram import diagram

    return diagram(_graph_of(spec, input, overrides), depth, rankdir)


def _graph_of(spec: Any, input_shape: Shape, overrides: dict) -> TypedGraph:
    """A typed graph from a graph, a built module, a parsed spec or a spec file."""
    graph = getattr(spec, "_archspec_graph", None)
    if graph is not None:
        spec = graph.graph
    if not isinstance(spec, TypedGraph):
        return compile(spec, None, input_shape, **overrides)
    if input_shape is not None or overrides:
        raise TypeError("a compiled graph or built module has its input and params already: pass the spec file")
    return spec


def cli_main(argv: list[str] | None = None) -> int:
    """Run the `archspec` command line in-process; returns the exit code."""
    from archspec.cli import main

    return main(argv)
