"""Reference implementations, when the `oracles` extra is installed. Each factory returns None when missing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from collections.abc import Callable

import torch


def torchreid_osnet(variant: str = "osnet_x1_0", **kwargs) -> torch.nn.Module | None:
    """torchreid's OSNet, loaded from its own file: the package init would import torchvision and more."""
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


class _ReidBackbone(torch.nn.Module):
    """Seed 001's ReID ResNet built from torchvision's own modules: its stem without ReLU and with
    MaxPool2d(2, 2, 0), layer4's first block at stride 1 (last_stride), and the layer4 map as the output."""

    def __init__(self, resnet: torch.nn.Module):
        super().__init__()
        self.conv1, self.bn1 = resnet.conv1, resnet.bn1
        self.maxpool = torch.nn.MaxPool2d(2, 2, 0)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        block = self.layer4[0]
        block.conv2.stride = (1, 1)
        block.downsample[0].stride = (1, 1)

    def forward(self, x):
        x = self.maxpool(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def reid_resnet(depth: int) -> torch.nn.Module | None:
    resnet = torchvision_model(f"resnet{depth}")
    return None if resnet is None else _ReidBackbone(resnet)


# spec -> (reference factory, how the layouts match: "names" or "order")
ORACLES: dict[str, tuple[Callable[[], torch.nn.Module | None], str]] = {
    **{f"resnet{d}": ((lambda d=d: torchvision_model(f"resnet{d}")), "names") for d in (50, 101, 152)},
    "mobilenet_v2": (lambda: torchvision_model("mobilenet_v2"), "order"),
    **{n: ((lambda n=n: torchreid_osnet(n, num_classes=1000)), "names")
       for n in ("osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ibn_x1_0")},
    **{f"mixnet_{v}": ((lambda v=v: timm_model(f"mixnet_{v}")), "order") for v in "sml"},
}
REFERENCES = {name: factory for name, (factory, _) in ORACLES.items()}
# seed layouts rebuilt from the reference library's own modules (tests only; the benchmarks use ORACLES)
REBUILT: dict[str, tuple[Callable[[], torch.nn.Module | None], str]] = {
    f"resnet{d}_reid": ((lambda d=d: reid_resnet(d)), "names") for d in (50, 101, 152)}


def load_by_order(target: torch.nn.Module, source: torch.nn.Module) -> None:
    """Copy `source`'s state into `target` by position; for layouts that differ only in names."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    assert len(src) == len(dst), f"{len(src)} tensors vs {len(dst)}"
    for (key, ours), theirs in zip(dst.items(), src):
        assert ours.shape == theirs.shape, f"{key}: {tuple(ours.shape)} vs {tuple(theirs.shape)}"
    target.load_state_dict(dict(zip(dst, src)), strict=True)


# ---- seed 003: pytorch-ssd's MobileNetV2, as the seed's code writes it (print and layout oracle) ----------

def _seed_conv_bn(inp: int, oup: int, stride: int, relu: type) -> torch.nn.Sequential:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), relu(inplace=True))


def _seed_conv_1x1_bn(inp: int, oup: int, use_batch_norm: bool, relu: type) -> torch.nn.Sequential:
    nn = torch.nn
    norm = [nn.BatchNorm2d(oup)] if use_batch_norm else []
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), *norm, relu(inplace=True))


class InvertedResidual(torch.nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float, use_batch_norm: bool, relu: type):
        super().__init__()
        nn = torch.nn
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup

        def norm(c: int) -> list:
            return [nn.BatchNorm2d(c)] if use_batch_norm else []

        expand = [] if expand_ratio == 1 else [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), *norm(hidden),
                                               relu(inplace=True)]
        self.conv = nn.Sequential(*expand, nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                  *norm(hidden), relu(inplace=True), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                                  *norm(oup))

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(torch.nn.Module):
    """Seed 003's MobileNetV2 (pytorch-ssd): t, c, n, s table, int(c * width_mult), ReLU6 or ReLU."""

    def __init__(self, n_class: int = 1000, width_mult: float = 1.0, dropout_ratio: float = 0.2,
                 use_batch_norm: bool = True, onnx_compatible: bool = False):
        super().__init__()
        nn = torch.nn
        relu = nn.ReLU if onnx_compatible else nn.ReLU6
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        input_channel = int(32 * width_mult)
        self.last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        features = [_seed_conv_bn(3, input_channel, 2, relu)]
        for t, c, n, s in setting:
            output_channel = int(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t,
                                                 use_batch_norm, relu))
                input_channel = output_channel
        features.append(_seed_conv_1x1_bn(input_channel, self.last_channel, use_batch_norm, relu))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout_ratio), nn.Linear(self.last_channel, n_class))

    def forward(self, x):
        x = self.features(x)
        x = x.mean(3).mean(2)
        return self.classifier(x)
