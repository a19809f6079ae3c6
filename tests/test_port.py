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


def port(tmp_path, checkpoint, spec: str, *extra: str) -> tuple[int, object]:
    out = tmp_path / "ported.safetensors"
    out.unlink(missing_ok=True)
    rc = archspec.cli_main(["port", str(checkpoint), "--spec", spec, "-o", str(out), *extra])
    return rc, out


def test_torchvision_resnet50_ports_into_resnet50_reid_by_dropping_fc(tmp_path, capsys):
    source = torchvision_model("resnet50")
    if source is None:
        pytest.skip("torchvision is not installed")
    checkpoint = tmp_path / "tv.pth"
    torch.save(source.state_dict(), checkpoint)
    rc, _ = port(tmp_path, checkpoint, "resnet50_reid")
    assert rc == 1 and "has 320 tensors, the spec 318" in capsys.readouterr().err
    for selection in (["--drop", "fc.*"], ["--keep", "conv1.*", "--keep", "bn1.*", "--keep", "layer*"]):
        rc, out = port(tmp_path, checkpoint, "resnet50_reid", *selection)
        assert rc == 0 and "318 tensors mapped" in capsys.readouterr().err
        model = archspec.load("resnet50_reid", weights=out)
        expected = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
        assert list(model.state_dict()) == list(expected)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    rc, _ = port(tmp_path, checkpoint, "resnet50_reid", "--drop", "classifier.*")
    assert rc == 1 and "[port.pattern]" in capsys.readouterr().err


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module", "state_dict+module"])
def test_checkpoint_wrappers_unwrap_the_same_for_port_and_verify(tmp_path, wrap):
    source = torchvision_model("mobilenet_v2")
    if source is None:
        pytest.skip("torchvision is not installed")
    state = source.state_dict()
    if "module" in wrap:
        state = {f"module.{k}": v for k, v in state.items()}
    if wrap.startswith(("state_dict", "model")):
        state = {wrap.split("+")[0]: state, "epoch": 90}
    checkpoint = tmp_path / "wrapped.pth"
    torch.save(state, checkpoint)
    rc, out = port(tmp_path, checkpoint, "mobilenet_v2", "--verify", "torchvision:mobilenet_v2")
    assert rc == 0
    assert_same_outputs("mobilenet_v2.yaml", out, source)


def test_a_pickled_model_gets_one_clean_line(tmp_path, capsys):
    source = torchvision_model("mobilenet_v2")
    if source is None:
        pytest.skip("torchvision is not installed")
    checkpoint = tmp_path / "whole.pth"
    torch.save(source, checkpoint)  # the whole module, not its state_dict
    rc, out = port(tmp_path, checkpoint, "mobilenet_v2")
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert err.count("\n") == 1 and "\x1b" not in err, err
    assert "(torchvision.models.mobilenetv2.MobileNetV2)" in err and "weights_only=True" in err
    assert "weights_only=False" in err
    assert err.rstrip().endswith("torch.save(model.state_dict(), 'state_dict.pth') [weights.unreadable]")


def test_mobilenet_v2_torchvision_rounding_reproduces_width_1_4(tmp_path, capsys):
    """`rounding: torchvision` gives torchvision's channels: 6,108,776 params at width 1.4, layout by order."""
    graph = archspec.compile("mobilenet_v2", width_mult=1.4, rounding="torchvision")
    assert graph.total_params == 6_108_776
    assert archspec.compile("mobilenet_v2", width_mult=1.4).total_params == 6_082_580  # the seed's int() rounding
    source = torchvision_model("mobilenet_v2", width_mult=1.4)
    if source is None:
        pytest.skip("torchvision is not installed")
    assert sum(p.numel() for p in source.parameters()) == 6_108_776
    ours = archspec.load("mobilenet_v2", width_mult=1.4, rounding="torchvision").state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in source.state_dict().values()]
    checkpoint = tmp_path / "tv140.pth"
    torch.save(source.state_dict(), checkpoint)
    readme = (ROOT / "README.md").read_text()
    assert "--set width_mult=1.4 --set rounding=torchvision" in readme  # the README's port example
    rc, out = port(tmp_path, checkpoint, "mobilenet_v2", "--set", "width_mult=1.4", "--set", "rounding=torchvision")
    assert rc == 0
    model = archspec.load("mobilenet_v2", width_mult=1.4, rounding="torchvision", weights=out).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), source.eval()(x), rtol=1e-4, atol=1e-5)
