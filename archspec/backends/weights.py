"""Weights in and out. Only safetensors, or `torch.load(weights_only=True)`, ever read a file.

Names, shapes and dtypes are checked against the compiled model before any tensor data is read:
safetensors files by their header, .pt/.pth files through a memory map (tensors stay on disk until
copied). A mismatch is reported grouped by spec node, with the YAML line that made the node.
"""

from __future__ import annotations

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


def _where(path: str) -> Location:
    return Location(str(path), 0, 0)


def read_header(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of a checkpoint, without reading its tensor data."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            out = {}
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    piece = handle.get_slice(key)
                    out[key] = (tuple(piece.get_shape()), SAFETENSORS_DTYPES.get(piece.get_dtype(), None))
            return out
        if suffix in (".pt", ".pth", ".bin"):
            state = _torch_load(path)
            return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    except WeightsError:
        raise
    except Exception as exc:  # a corrupt or hostile file: report it, never trace back
        raise WeightsError(f"cannot read weights: {type(exc).__name__}: {str(exc)[:200]}", _where(path),
                           "is it a safetensors file or a state_dict saved with torch.save?",
                           code="weights.unreadable") from None
    raise WeightsError(f"unknown weights format {suffix!r}", _where(path), "use .safetensors, .pt or .pth",
                       code="weights.format")


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("the file does not hold a state_dict (a mapping of names to tensors)", _where(path),
                           code="weights.not_a_state_dict")
    return state


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
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = _torch_load(path)
    model.load_state_dict(state, strict=True)


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the state_dict as safetensors, atomically (shared tensors are cloned apart)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    write_atomic(path, save(state))
