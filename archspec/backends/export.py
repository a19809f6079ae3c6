"""Export a built module: ONNX (dynamic batch), TorchScript (traced), or standalone Python source."""

from __future__ import annotations

import io
import keyword
import os
import tempfile
import warnings
from pathlib import Path

import torch

from archspec.atomic import write_atomic
from archspec.errors import ArchspecError, Location

FORMATS = ("onnx", "torchscript", "python")


class ExportError(ArchspecError):
    code = "export.failed"


def example_input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *model._plan.input_shape)


def export_onnx(model: torch.nn.Module, path: str | Path, opset: int | None = None) -> None:
    """ONNX through torch's dynamo exporter, with a dynamic batch dimension (needs onnx + onnxscript)."""
    path = Path(path)
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent or ".")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if _keyword_names(model):
                # torch.export writes `self.class.weight` as Python source and cannot compile it; the
                # TorchScript-based exporter keeps such names (as initializer names) and the dynamic batch.
                torch.onnx.export(model, (example_input(model),), tmp, dynamo=False, input_names=["x"],
                                  dynamic_axes={"x": {0: "batch"}}, opset_version=opset)
            else:
                torch.onnx.export(model, (example_input(model),), tmp, dynamo=True, input_names=["x"],
                                  dynamic_shapes={"x": {0: batch}}, opset_version=opset, verbose=False)
        write_atomic(path, Path(tmp).read_bytes())  # the output-path rules of every file archspec writes
    except ImportError as exc:
        raise ExportError(f"ONNX export needs more packages: {exc}", Location(str(path), 0, 0),
                          "pip install 'archspec[export]' (onnx, onnxscript, onnxruntime)",
                          code="export.missing") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _keyword_names(model: torch.nn.Module) -> bool:
    """Whether a module path has a part that is a Python keyword (torch accepts `class` as a name)."""
    return any(keyword.iskeyword(part) for name, _ in model.named_modules() for part in name.split("."))


def export_torchscript(model: torch.nn.Module, path: str | Path) -> None:
    """A traced TorchScript module of the eval graph."""
    model = model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example_input(model))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    write_atomic(path, buffer.getvalue())


TRACE_BATCH = 2  # example_input's batch: ONNX needs more than 1 to keep the batch dimension dynamic


def export(model: torch.nn.Module, graph, path: str | Path, fmt: str, limits=None) -> None:
    if fmt in ("onnx", "torchscript"):
        from archspec.graph.limits import Limits, check_traced

        check_traced(limits or Limits(), graph, TRACE_BATCH, Location(graph.file or str(path), 1, 1, ("input",)))
    if fmt == "onnx":
        export_onnx(model, path)
    elif fmt == "torchscript":
        export_torchscript(model, path)
    elif fmt == "python":
        from archspec.backends.pysource import python_source

        write_atomic(path, python_source(graph, model))
    else:
        raise ExportError(f"unknown export format {fmt!r}", Location(str(path), 0, 0), f"use one of {FORMATS}",
                          code="export.format")
