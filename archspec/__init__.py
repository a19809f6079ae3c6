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


def parse(path: str | Path, **overrides: Any) -> Spec:
    """Load and validate a spec file (following `extends`) with param overrides."""
    from archspec.spec.loader import parse as _parse

    return _parse(path, overrides)


def compile(spec: Spec | str | Path, limits: Limits | None = None, **overrides: Any) -> TypedGraph:  # noqa: A001
    """Lower a spec to the typed graph: shapes, params and MACs of every call. No torch."""
    from archspec.gcpause import gc_paused
    from archspec.graph.lower import lower

    with gc_paused():
        if not isinstance(spec, Spec):
            spec = parse(spec, **overrides)
        elif overrides:
            raise TypeError("pass overrides to parse() when giving a parsed Spec")
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
         weights: str | Path | None = None, pretrained: str | None = None, **overrides: Any) -> nn.Module:
    """Spec file or spec name -> a plain torch.nn.Module. Keyword arguments override the spec's params.

    `weights` (.safetensors, .pt, .pth) loads strictly; names, shapes and dtypes are checked first.
    `pretrained` names a checkpoint the spec declares under `weights:`: downloaded into ARCHSPEC_CACHE (or
    found there), its SHA-256 verified, then loaded the way its entry says (by name, or by order).
    """
    if weights is not None and pretrained is not None:
        raise TypeError("pass either weights= or pretrained=, not both")
    graph = compile(path, limits, **overrides)
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


def summary(spec: Spec | TypedGraph | str | Path, depth: int = 2, **overrides: Any) -> str:
    """The per-block table that `archspec build` prints."""
    from archspec.backends.summary import render

    graph = spec if isinstance(spec, TypedGraph) else compile(spec, **overrides)
    return render(graph, depth)


def draw(spec: Spec | TypedGraph | str | Path, depth: int = 2, rankdir: str = "TB", **overrides: Any):
    """The architecture diagram as a `graphviz.Digraph` (Jupyter displays it). No torch."""
    from archspec.backends.diagram import diagram

    graph = spec if isinstance(spec, TypedGraph) else compile(spec, **overrides)
    return diagram(graph, depth, rankdir)


def cli_main(argv: list[str] | None = None) -> int:
    """Run the `archspec` command line in-process; returns the exit code."""
    from archspec.cli import main

    return main(argv)
