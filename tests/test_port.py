"""archspec port: checkpoints of other layouts mapped by order and shape, verified, or refused."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from oracles import timm_model, torchvision_model

import archspec
from archspec.backends.port import PortError, map_by_order


def assert_same_outputs(spec: str, weights, source: torch.nn.Module) -> None:
    model = archspec.load(ROOT / "specs" / spec, weights=weights).eval()
    source.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x), rtol=1e-4, atol=1e-5)


def test_torchvision_mobilenet_v2_ports_onto_the_seed_layout(tmp_path):
    source = torchvision_model("mobilenet_v2")
    if source is None:
        pytest.skip("torchvision is not installed")
    checkpoint = tmp_path / "tv.pth"
    torch.save(source.state_dict(), checkpoint)
    out = tmp_path / "ported.safetensors"
    assert archspec.cli_main(["port", str(checkpoint), "--spec", str(ROOT / "specs/mobilenet_v2.yaml"),
                              "-o", str(out), "--verify", "torchvision:mobilenet_v2"]) == 0
    assert_same_outputs("mobilenet_v2.yaml", out, source)


def test_timm_mixnet_s_ports_onto_the_seed_layout(tmp_path):
    source = timm_model("mixnet_s")
    if source is None:
        pytest.skip("timm is not installed")
    checkpoint = tmp_path / "timm.safetensors"
    archspec.save(source, checkpoint)
    out = tmp_path / "ported.safetensors"
    argv = ["port", str(checkpoint), "--spec", str(ROOT / "specs/mixnet_s.yaml"), "-o", str(out)]
    assert archspec.cli_main(argv) == 1  # safetensors keep no order: refused without a source model
    assert archspec.cli_main([*argv, "--verify", "timm:mixnet_s"]) == 0
    assert_same_outputs("mixnet_s.yaml", out, source)


def test_torchvision_resnet50_checkpoint_loads_by_name(tmp_path):
    source = torchvision_model("resnet50")
    if source is None:
        pytest.skip("torchvision is not installed")
    weights = tmp_path / "resnet50.safetensors"
    archspec.save(source, weights)
    assert_same_outputs("resnet50.yaml", weights, source)


def test_mismatched_layouts_are_refused_with_positions():
    a = archspec.load(ROOT / "specs/osnet_x0_25.yaml").state_dict()
    b = archspec.load(ROOT / "specs/osnet_x0_5.yaml").state_dict()
    with pytest.raises(PortError) as info:
        map_by_order(a, b, "ckpt.pt")
    assert "#0: checkpoint conv1.conv.weight (16, 3, 7, 7)" in info.value.message
    shorter = dict(list(a.items())[:-2])
    with pytest.raises(PortError, match="has 565 tensors, the spec 567"):
        map_by_order(shorter, a, "ckpt.pt")


def test_a_renamed_layout_maps_by_position():
    """Another layout of the same network (other names, same order and shapes) maps position by position:
    the result has the spec's names, in the spec's order, holding the checkpoint's tensors."""
    target = archspec.load(ROOT / "specs/osnet_x0_25.yaml", seed=4).state_dict()
    donor = archspec.load(ROOT / "specs/osnet_x0_25.yaml", seed=5).state_dict()
    source = {f"backbone.t{i:04d}": value for i, value in enumerate(reversed(list(donor.values())))}
    source = dict(reversed(list(source.items())))  # names that sort differently from the spec's
    assert not set(source) & set(target)
    mapped = map_by_order(source, target, "ckpt.pt")
    assert list(mapped) == list(target)
    for (key, value), theirs in zip(mapped.items(), source.values()):
        assert value is theirs, key
    differs = [k for k in target if target[k].is_floating_point() and not torch.equal(mapped[k], target[k])]
    assert len(differs) > 100  # the weights really come from the checkpoint, not from the spec's own state
    model = archspec.load(ROOT / "specs/osnet_x0_25.yaml")
    model.load_state_dict(mapped, strict=True)
    assert torch.equal(model.conv1.conv.weight, donor["conv1.conv.weight"])
