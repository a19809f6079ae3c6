"""Reference implementations, when the `oracles` extra is installed. Each returns None when missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from collections.abc import Callable

import torch


def torchreid_osnet(variant: str = "osnet_x1_0", **kwargs) -> torch.nn.Module | None:
    """torchreid's OSNet, loaded from its own file: the package init would import torchvision."""
    try:
        path = importlib.metadata.distribution("torchreid").locate_file("torchreid/reid/models/osnet.py")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("torchreid_osnet_oracle", path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return getattr(module, variant)(pretrained=False, **kwargs)


def torchvision_model(name: str, **kwargs) -> torch.nn.Module | None:
    try:
        import torchvision.models as models
    except Exception:  # missing, or a torchvision built for another torch
        return None
    return getattr(models, name)(weights=None, **kwargs)


def timm_model(name: str) -> torch.nn.Module | None:
    try:
        import timm
    except Exception:
        return None
    return timm.create_model(name, pretrained=False)


REFERENCES: dict[str, Callable[[], torch.nn.Module | None]] = {
    "resnet50": lambda: torchvision_model("resnet50"),
    "osnet_x1_0": lambda: torchreid_osnet("osnet_x1_0", num_classes=1000),
    "mobilenet_v2": lambda: torchvision_model("mobilenet_v2"),
}


def load_by_order(target: torch.nn.Module, source: torch.nn.Module) -> None:
    """Copy `source`'s state into `target` by position; layouts that differ only in names."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    assert len(src) == len(dst), f"{len(src)} tensors vs {len(dst)}"
    for (key, ours), theirs in zip(dst.items(), src):
        assert ours.shape == theirs.shape, f"{key}: {tuple(ours.shape)} vs {tuple(theirs.shape)}"
    target.load_state_dict(dict(zip(dst, src)), strict=True)
