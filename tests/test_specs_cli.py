"""`archspec build` works for every shipped spec and prints the reference's parameter count."""

from __future__ import annotations

import pytest
import torch
from conftest import CASES, ROOT, SPECS, reference

import archspec
from archspec.cli import main

DEFAULT_CASE = {c["spec"]: c for c in CASES if not c.get("set")}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_build_prints_reference_params(spec, capsys):
    assert main(["build", str(spec), "--depth", "1"]) == 0
    out = capsys.readouterr().out
    params = reference(DEFAULT_CASE[spec.stem]["ref"])["params"]
    assert f"total params: {params:,}" in out
    assert f"{params:,} params (matches the static count)" in out


def test_ft_net_keeps_the_batch_dimension_at_batch_one():
    model = archspec.load(ROOT / "specs/ft_net.yaml").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 128)).shape == (1, 751)


def test_ft_net_declared_initialisation():
    model = archspec.load(ROOT / "specs/ft_net.yaml", seed=0)
    head = model.classifier
    assert torch.all(head.add_block[0].bias == 0) and torch.all(head.classifier[0].bias == 0)
    assert abs(head.classifier[0].weight.std().item() - 0.001) < 2e-4
    assert abs(head.add_block[1].weight.mean().item() - 1.0) < 0.01
    assert abs(head.add_block[1].weight.std().item() - 0.02) < 0.005
    fan_out_std = (2.0 / 512) ** 0.5  # kaiming_normal, mode fan_out, gain sqrt(2)
    assert abs(head.add_block[0].weight.std().item() / fan_out_std - 1) < 0.05


def test_same_seed_same_weights_and_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = archspec.load(ROOT / "specs/mobilenet_v2.yaml", seed=7).state_dict()
    assert torch.equal(torch.rand(1), before)  # the caller's RNG stream is left as it was
    b = archspec.load(ROOT / "specs/mobilenet_v2.yaml", seed=7).state_dict()
    c = archspec.load(ROOT / "specs/mobilenet_v2.yaml", seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bad_init_rule_is_located(tmp_path):
    path = tmp_path / "init.yaml"
    path.write_text("archspec: 1\nname: i\ninput: [4]\nnodes:\n  - {name: fc, block: linear, out: 2}\n"
                    "init:\n  - {blocks: [linear], weight: \"os.system('x')\"}\n")
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.compile(path)
    assert info.value.code == "schema.init" and info.value.location.line == 7


def test_mixnet_pool_does_not_hard_code_the_input_size():
    model = archspec.load(ROOT / "specs/mixnet_s.yaml").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 160, 192)).shape == (1, 1000)


def test_reid_stem_params_switch_to_the_torchvision_stem():
    seed_stem = archspec.compile(ROOT / "specs/resnet50_reid.yaml")
    tv_stem = archspec.compile(ROOT / "specs/resnet50_reid.yaml", stem_relu=True, maxpool_kernel=3,
                               maxpool_padding=1)
    assert "relu" not in seed_stem.modules and "relu" in tv_stem.modules
    assert seed_stem.call("maxpool").out_shape == tv_stem.call("maxpool").out_shape == (64, 64, 32)
    assert seed_stem.output_shapes()[0] == (2048, 16, 8)
    assert archspec.compile(ROOT / "specs/resnet50_reid.yaml", last_stride=2).output_shapes()[0] == (2048, 8, 4)
