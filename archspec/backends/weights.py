"""Weights in and out. Only safetensors, or `torch.load(weights_only=True)`, ever read a file.

Names, shapes and dtypes are checked against the compiled model before any tensor data is read:
safetensors files by their header, .pt/.pth files through a memory map (tensors stay on disk until
copied). A mismatch is reported grouped by spec node, with the YAML line that made the node.
"""

from __future__ import annotations

import math
import os
import pickle
from collections import defaultdict
from pathlib import Path

import torch

from archspec.atomic import write_atomic
from archspec.errors import ArchspecError, Location
from archspec.graph.ir import TypedGraph

SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                      "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


class WeightsError(ArchspecError):
    code = "weights.mismatch"


def _where(path: str | Path) -> Location:
    return Location(str(path), 0, 0)


MAX_TENSORS = 65_536  # a state_dict with more entries is refused before it is read (the largest zoo models: ~2,000)
MAX_HEADER = 64 << 20  # a safetensors JSON header
SAFETENSORS_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def _fail(path: Path, message: str, code: str, hint: str = "") -> WeightsError:
    return WeightsError(message, _where(path), hint, code=code)


def _open_regular(path: Path):
    """A binary file object for a regular file; anything else (a FIFO, a device, a folder) is refused by a
    stat before opening, and again on the descriptor (opened without blocking)."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise _fail(path, "the weights file is not a regular file", "io.not_a_file", "name a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _fail(path, f"cannot read file: {exc.strerror or exc}", "io.unreadable", "check the path") from None
    except ValueError:
        raise _fail(path, "cannot read file: the path is not valid", "io.unreadable") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _fail(path, "the weights file is not a regular file", "io.not_a_file")
    return os.fdopen(fd, "rb")


def _no_duplicates(pairs: list) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(ValueError):
    pass


def safetensors_header(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Parse and check a safetensors header ourselves: one JSON object, no duplicate keys (a JSON reader
    would keep the last), every dtype, shape and data range consistent with the file."""
    import json

    with _open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise _fail(path, "the file is too short to be safetensors", "weights.header")
        length = int.from_bytes(head, "little")
        if length > min(MAX_HEADER, size - 8):
            raise _fail(path, f"the safetensors header claims {length:,} bytes (the file has {size:,})",
                        "weights.header")
        text = fh.read(length)
    if text.count(b'"data_offsets"') > MAX_TENSORS:  # refuse a huge header before parsing it
        raise _fail(path, f"the file holds more than {MAX_TENSORS:,} tensors", "weights.too_many")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise _fail(path, f"the safetensors header names {str(exc)[:80]} twice", "weights.duplicate_key",
                    "a reader would silently keep one of them; the file is malformed") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _fail(path, f"the safetensors header is not valid JSON: {type(exc).__name__}", "weights.header") from None
    if not isinstance(header, dict):
        raise _fail(path, "the safetensors header is not a JSON object", "weights.header")
    if len(header) > MAX_TENSORS + 1:
        raise _fail(path, f"the file holds {len(header):,} tensors (at most {MAX_TENSORS:,})", "weights.too_many")
    data = size - 8 - length
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise _fail(path, "the safetensors __metadata__ is not a map of strings", "weights.header")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _fail(path, f"tensor {key[:80]!r}: a header entry needs dtype, shape and data_offsets only",
                        "weights.header")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_SIZES:  # a list or object is unhashable
            raise _fail(path, f"tensor {key[:80]!r}: unknown dtype {str(dtype)[:20]!r}", "weights.header")
        if not isinstance(shape, list) or len(shape) > 16 or \
                not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 48 for d in shape):
            raise _fail(path, f"tensor {key[:80]!r}: the shape is not a list of sizes", "weights.header")
        if not isinstance(offsets, list) or len(offsets) != 2 or \
                not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets) or \
                not 0 <= offsets[0] <= offsets[1] <= data:
            raise _fail(path, f"tensor {key[:80]!r}: data_offsets are outside the file", "weights.header")
        if offsets[1] - offsets[0] != math.prod(shape) * SAFETENSORS_SIZES[dtype]:
            raise _fail(path, f"tensor {key[:80]!r}: its data range does not match its shape and dtype",
                        "weights.header")
        out[key] = (tuple(shape), SAFETENSORS_DTYPES.get(dtype))
    return out


def _check_zip(path: Path) -> None:
    """torch.save writes an uncompressed zip: refuse compressed records (read through a memory map they
    would be garbage), duplicate names and more records than a state_dict can have, before torch reads it."""
    import zipfile

    with _open_regular(path) as fh:
        try:
            archive = zipfile.ZipFile(fh)
        except zipfile.BadZipFile:
            return  # not a zip: the legacy format, which torch.load(weights_only=True) checks itself
        except (OSError, ValueError, EOFError, MemoryError, NotImplementedError) as exc:
            raise _fail(path, f"cannot read the archive: {type(exc).__name__}", "weights.unreadable") from None
        with archive:
            records = archive.infolist()
            if len(records) > MAX_TENSORS + 16:
                raise _fail(path, f"the archive holds {len(records):,} records (at most {MAX_TENSORS:,} tensors)",
                            "weights.too_many")
            names = set()
            for info in records:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise _fail(path, f"record {info.filename[:80]!r} is compressed; torch.save never compresses",
                                "weights.compressed", "save the state_dict again with torch.save")
                if info.filename in names:
                    raise _fail(path, f"record {info.filename[:80]!r} appears twice", "weights.duplicate_key")
                names.add(info.filename)


def read_header(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of a checkpoint, without reading its tensor data."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise WeightsError(f"unknown weights format {suffix!r}", _where(path), "use .safetensors, .pt or .pth",
                           code="weights.format")
    try:
        if suffix == ".safetensors":
            return strip_module(safetensors_header(path))
        state = _torch_load(path)
        return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    except WeightsError:
        raise
    except Exception as exc:  # a corrupt or hostile file: report it, never trace back
        raise WeightsError(f"cannot read weights: {type(exc).__name__}: {str(exc)[:200]}", _where(path),
                           "is it a safetensors file or a state_dict saved with torch.save?",
                           code="weights.unreadable") from None


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checked checkpoint (read_header first)."""
    path = Path(path)
    read_header(path)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load

            with _open_regular(path) as fh:
                return strip_module(load(fh.read()))
        return _torch_load(path)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights: {type(exc).__name__}: {str(exc)[:200]}", _where(path),
                           code="weights.unreadable") from None


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    _check_zip(path)  # also checks that it is a regular file (torch.load opens it by name, for its memory map)
    try:
        state = unwrap(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    except pickle.UnpicklingError as exc:
        raise _pickled_object(path, exc) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("the file does not hold a state_dict (a mapping of names to tensors)", _where(path),
                           code="weights.not_a_state_dict")
    if len(state) > MAX_TENSORS:
        raise _fail(path, f"the file holds {len(state):,} tensors (at most {MAX_TENSORS:,})", "weights.too_many")
    for key, value in state.items():
        if not isinstance(key, str):
            raise _fail(path, f"a state_dict key is not a string ({type(key).__name__} {str(key)[:40]})",
                        "weights.key")
        kind = _tensor_kind(value)
        if kind:
            raise _fail(path, f"tensor {key[:80]!r} is {kind}; only dense CPU tensors are read",
                        "weights.tensor_kind", "save plain tensors (tensor.to_dense(), dequantize())")
    return state


WRAPPERS = ("state_dict", "model")  # training scripts save {"state_dict": ..., "epoch": ...}, {"model": ...}


def unwrap(state: object) -> object:
    """A checkpoint's state_dict: inside a `state_dict` or `model` entry if it has one, with the `module.`
    prefix that DataParallel and DistributedDataParallel add taken off every name that has it (all or none)."""
    if isinstance(state, dict):
        for key in WRAPPERS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    return strip_module(state) if isinstance(state, dict) else state


def strip_module(state: dict) -> dict:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _pickled_object(path: Path, exc: Exception) -> WeightsError:
    """torch.load(weights_only=True) refused a pickle that builds an object: say so on one clean line."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc))  # torch's message may carry ANSI codes
    found = re.search(r"GLOBAL ([A-Za-z_][\w.]*)", text)
    what = f" ({found.group(1)[:100]})" if found else ""
    return _fail(path, f"the file pickles a Python object{what}, not a state_dict; archspec reads checkpoints "
                 "with torch.load(weights_only=True), which refuses to build objects (no code runs); if you trust the "
                 "file, load it once with weights_only=False and re-save its state_dict: "
                 "torch.save(model.state_dict(), 'state_dict.pth')", "weights.unreadable")


def _tensor_kind(tensor: torch.Tensor) -> str:
    if getattr(tensor, "is_nested", False):
        return "a nested tensor"
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).replace('torch.', '')} tensor"
    if tensor.is_quantized:
        return "a quantized tensor"
    if tensor.device.type != "cpu":
        return f"a {tensor.device.type} tensor"
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        return f"a {type(tensor).__name__}"
    return ""


def check(model: torch.nn.Module, header: dict, tg: TypedGraph | None, path: Path) -> None:
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in header]
    unexpected = [k for k in header if k not in expected]
    wrong = [k for k in expected if k in header and header[k] != expected[k]]
    if not (missing or unexpected or wrong):
        return
    lines = []
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape or dtype differs", wrong)):
        for node, members in _by_node(keys, tg).items():
            shown = ", ".join(k[len(node) + 1:] if node and k.startswith(node + ".") else k for k in members[:6])
            more = f" (+{len(members) - 6} more)" if len(members) > 6 else ""
            detail = ""
            if title.startswith("shape"):
                k = members[0]
                detail = f": file {header[k][0]} {header[k][1]}, model {expected[k][0]} {expected[k][1]}"
            lines.append(f"  {title}: {node or '<top>'}{_line(node, tg)}: {shown}{more}{detail}")
    raise WeightsError(f"the weights do not match the model ({len(missing)} missing, {len(unexpected)} unexpected, "
                       f"{len(wrong)} differ)\n" + "\n".join(lines[:40]), _where(path),
                       "check that the spec and params (--set) match the checkpoint; `archspec port` maps "
                       "checkpoints of other layouts", code="weights.mismatch")


def _by_node(keys: list[str], tg: TypedGraph | None) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        module = key.rpartition(".")[0]
        node = module
        if tg is not None:
            while node and node not in tg.modules:
                node = node.rpartition(".")[0]
        groups[node].append(key)
    return groups


def _line(node: str, tg: TypedGraph | None) -> str:
    decl = tg.modules.get(node) if tg is not None else None
    if decl is None or decl.where is None:
        return ""
    return f" ({Path(decl.where.file).name}:{decl.where.line})"


def load_weights(model: torch.nn.Module, path: str | Path, tg: TypedGraph | None = None) -> None:
    """Strict load, checked against the header first."""
    path = Path(path)
    check(model, read_header(path), tg, path)
    state = read_state(path)
    check(model, {k: (tuple(v.shape), v.dtype) for k, v in state.items()}, tg, path)  # the file may have changed
    model.load_state_dict(state, strict=True)


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the state_dict as safetensors, atomically (shared tensors are cloned apart)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    write_atomic(path, save(state))
