"""Port a checkpoint of another layout of the same network onto a spec, by parameter order and shape.

The mapping is position by position: the n-th tensor of the source state_dict becomes the n-th of the
spec's. It is accepted only when both have the same number of tensors and every pair has the same shape
and dtype; anything else is ambiguous, and is refused with the positions where the layouts part.
A source model from a known zoo (`torchvision:NAME`, `timm:NAME`) verifies the result with a forward pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from archspec.backends import weights
from archspec.backends.weights import WeightsError
from archspec.errors import ArchspecError, Location

ZOO = re.compile(r"(torchvision|timm):([a-z0-9_]+)")


class PortError(ArchspecError):
    code = "port.ambiguous"


def read_state(path: Path) -> dict[str, torch.Tensor]:
    return weights.read_state(path)  # refuses unreadable or hostile files before any data is read


def select(state: dict[str, torch.Tensor], keep: list[str] | tuple = (), drop: list[str] | tuple = (),
           where: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The tensors whose names match a `keep` pattern (all, when none is given) and no `drop` pattern, in
    order. Patterns are shell globs (`fc.*`, `layer?.0.*`); one that matches no tensor is refused as a typo."""
    from fnmatch import fnmatchcase

    for option, patterns in (("--keep", keep), ("--drop", drop)):
        for pattern in patterns:
            if not any(fnmatchcase(key, pattern) for key in state):
                raise PortError(f"{option} {pattern[:80]!r} matches no tensor of the checkpoint", Location(where, 0, 0),
                                f"its first names: {', '.join(list(state)[:4])}", code="port.pattern")
    return {key: value for key, value in state.items()
            if (not keep or any(fnmatchcase(key, p) for p in keep)) and not any(fnmatchcase(key, p) for p in drop)}


def in_source_order(state: dict[str, torch.Tensor], path: Path, source: torch.nn.Module | None) -> dict:
    """safetensors files keep no tensor order (they come back sorted by name): take the source model's."""
    if path.suffix.lower() != ".safetensors":
        return state
    if source is None:
        raise PortError("a .safetensors file does not keep the order of its tensors, so mapping it by position "
                        "would be ambiguous", Location(str(path), 0, 0),
                        "name the source model with --verify ZOO:NAME, or port a .pt/.pth state_dict",
                        code="port.order_unknown")
    order = list(source.state_dict())
    if set(order) != set(state):
        raise PortError("the checkpoint's names are not the source model's", Location(str(path), 0, 0),
                        "check --verify", code="port.source_mismatch")
    return {key: state[key] for key in order}


def map_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], where: str) -> dict:
    src, dst = list(source.items()), list(target.items())
    problems = []
    if len(src) != len(dst):
        problems.append(f"the checkpoint has {len(src)} tensors, the spec {len(dst)}")
    for i, ((skey, sval), (dkey, dval)) in enumerate(zip(src, dst)):
        if sval.shape != dval.shape or sval.dtype != dval.dtype:
            problems.append(f"#{i}: checkpoint {skey} {tuple(sval.shape)} {sval.dtype} vs spec {dkey} "
                            f"{tuple(dval.shape)} {dval.dtype}")
        if len(problems) >= 8:
            break
    if problems:
        raise PortError("the layouts do not match position by position, so the mapping would be ambiguous:\n  "
                        + "\n  ".join(problems), Location(where, 0, 0),
                        "check that spec and params (--set) describe the same network as the checkpoint")
    return {dkey: sval for (dkey, _), (_, sval) in zip(dst, src)}


def zoo_model(name: str) -> torch.nn.Module:
    match = ZOO.fullmatch(name)
    if match is None:
        raise PortError(f"unknown source model {name!r}", Location("<port>", 0, 0),
                        "use torchvision:NAME or timm:NAME", code="port.source")
    zoo, model = match.groups()
    try:
        if zoo == "torchvision":
            import torchvision.models as models

            if model not in models.list_models():
                raise PortError(f"torchvision has no model {model!r}", Location("<port>", 0, 0), code="port.source")
            return getattr(models, model)(weights=None)
        import timm

        if model not in timm.list_models():
            raise PortError(f"timm has no model {model!r}", Location("<port>", 0, 0), code="port.source")
        return timm.create_model(model, pretrained=False)
    except ImportError as exc:
        raise PortError(f"{zoo} is not installed: {exc}", Location("<port>", 0, 0), code="port.source") from None


def verify(model: torch.nn.Module, source: torch.nn.Module, state: dict, input_shape: tuple) -> float:
    """Largest output difference relative to the largest output, same weights and input, eval mode."""
    try:
        source.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"the checkpoint does not load into the source model: {str(exc)[:300]}",
                           Location("<port>", 0, 0), code="port.source_mismatch") from None
    model.eval(), source.eval()
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        ours, theirs = model(x), source(x)
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()
