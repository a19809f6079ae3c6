"""Export a built module: ONNX and torch.export programs (dynamic batch), TorchScript (traced; deprecated by
torch, kept for old consumers), or standalone Python source."""

from __future__ import annotations

import contextlib
import io
import keyword
import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path

import torch

from archspec.atomic import OutputError, install_file, write_atomic
from archspec.errors import ArchspecError, Location

FORMATS = ("onnx", "exported", "torchscript", "python")


class ExportError(ArchspecError):
    code = "export.failed"


def example_input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *model._plan.input_shape)


ONNX_INLINE_LIMIT = 2**31 - 1  # protobuf's limit on one message: larger models keep their weights beside


def export_onnx(model: torch.nn.Module, path: str | Path, opset: int | None = None) -> list[Path]:
    """ONNX with a dynamic batch dimension (needs onnx + onnxscript): one self-contained file, or, above
    2 GB, `NAME.onnx` with its weights in `NAME.onnx.data` beside it. Returns the files written.

    torch's exporter writes into a private temporary folder (its side files never reach the output folder);
    the model is then read back and written again under archspec's output rules.
    """
    path = Path(path)
    with _workdir(path) as work:
        raw = Path(work) / "model.onnx"
        _torch_onnx_export(model.eval(), raw, opset, path)
        import onnx

        proto = onnx.load(str(raw), load_external_data=True)
        if proto.ByteSize() <= ONNX_INLINE_LIMIT:
            write_atomic(path, proto.SerializeToString())
            return [path]
        return _save_with_data(onnx, proto, path, Path(work))


@contextlib.contextmanager
def _workdir(path: Path):
    """A private temporary folder beside `path` (the system's for a device), removed with all it holds."""
    folder = path.parent if _is_regular_target(path) else None
    try:
        work = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".export", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in its folder: {exc.strerror or exc}", Location(str(path)),
                          code="io.output") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_regular_target(path: Path) -> bool:
    """Whether `path` is (or will be) a regular file, so that temporaries may go beside it."""
    try:
        return not stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return True


def _torch_onnx_export(model: torch.nn.Module, raw: Path, opset: int | None, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if _keyword_names(model):
                # torch.export writes `self.class.weight` as Python source and cannot compile it; the
                # TorchScript-based exporter keeps such names (as initializer names) and the dynamic batch.
                torch.onnx.export(model, (example_input(model),), str(raw), dynamo=False, input_names=["x"],
                                  dynamic_axes={"x": {0: "batch"}}, opset_version=opset)
            else:
                torch.onnx.export(model, (example_input(model),), str(raw), dynamo=True, input_names=["x"],
                                  dynamic_shapes={"x": {0: batch}}, opset_version=opset, verbose=False)
    except ImportError as exc:
        raise ExportError(f"ONNX export needs more packages: {exc}", Location(str(path), 0, 0),
                          "pip install 'archspec[export]' (onnx, onnxscript, onnxruntime)",
                          code="export.missing") from None
    except Exception as exc:  # the exporter refuses a graph: say so, located at the output
        raise ExportError(f"torch's ONNX exporter failed: {type(exc).__name__}: {str(exc)[:300]}",
                          Location(str(path), 0, 0), code="export.failed") from None


def _save_with_data(onnx, proto, path: Path, work: Path) -> list[Path]:
    """Above 2 GB: the graph in `path`, every weight in `NAME.onnx.data` beside it (named in the graph)."""
    if not _is_regular_target(path):
        raise ExportError("this ONNX model is above 2 GB, so its weights go to a file beside it, which a device "
                          "cannot have", Location(str(path), 0, 0), "name a regular file", code="export.failed")
    data = path.with_name(path.name + ".data")
    staged = work / "staged.onnx"
    onnx.save_model(proto, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)  # small constants stay inline (shape inference)
    written = [path]
    if (work / data.name).exists():
        install_file(work / data.name, data)
        written.append(data)
    install_file(staged, path)
    return written


def export_program(model: torch.nn.Module, path: str | Path) -> None:
    """A `torch.export` program (`.pt2`, read back by `torch.export.load`) with a dynamic batch dimension."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (example_input(model),), dynamic_shapes=({0: batch},))
            torch.export.save(program, buffer)
    except Exception as exc:  # torch.export refuses some graphs (module names that are Python keywords)
        hint = "rename modules named after Python keywords, or use --format onnx" if _keyword_names(model) else ""
        raise ExportError(f"torch.export failed: {type(exc).__name__}: {str(exc)[:300]}", Location(str(path), 0, 0),
                          hint, code="export.failed") from None
    write_atomic(path, buffer.getvalue())


def _keyword_names(model: torch.nn.Module) -> bool:
    """Whether a module path has a part that is a Python keyword (torch accepts `class` as a name)."""
    return any(keyword.iskeyword(part) for name, _ in model.named_modules() for part in name.split("."))


def export_torchscript(model: torch.nn.Module, path: str | Path) -> None:
    """A traced TorchScript module of the eval graph. torch deprecates TorchScript; its warnings are silenced
    here (the docs say so), so they never reach the user's terminal."""
    model = model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example_input(model))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    write_atomic(path, buffer.getvalue())


TRACE_BATCH = 2  # example_input's batch: ONNX needs more than 1 to keep the batch dimension dynamic
TRACED = ("onnx", "exported", "torchscript")


def export(model: torch.nn.Module, graph, path: str | Path, fmt: str, limits=None) -> list[Path]:
    """Write `model` as `fmt` to `path`; returns the files written (ONNX above 2 GB writes two)."""
    if fmt in TRACED:
        from archspec.graph.limits import Limits, check_traced

        check_traced(limits or Limits(), graph, TRACE_BATCH, Location(graph.file or str(path), 1, 1, ("input",)))
    if fmt == "onnx":
        return export_onnx(model, path)
    if fmt == "exported":
        export_program(model, path)
    elif fmt == "torchscript":
        export_torchscript(model, path)
    elif fmt == "python":
        from archspec.backends.pysource import python_source

        write_atomic(path, python_source(graph, model))
    else:
        raise ExportError(f"unknown export format {fmt!r}", Location(str(path), 0, 0), f"use one of {FORMATS}",
                          code="export.format")
    return [Path(path)]
