"""A built module behaves as a plain nn.Module: copy, pickle, save, trace, fx, modes."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from conftest import ROOT

import archspec

SPECS = ["resnet50", "osnet_x1_0", "mobilenet_v2"]


@pytest.fixture(scope="module", params=SPECS)
def model(request):
    torch.manual_seed(0)
    return archspec.load(ROOT / "specs" / f"{request.param}.yaml").eval()


def small_input(model) -> torch.Tensor:
    return torch.randn(2, 3, 128, 64) if model.arch_name.startswith("osnet") else torch.randn(2, 3, 96, 96)


def test_deepcopy_and_pickle_keep_behaviour(model):
    x = small_input(model)
    with torch.no_grad():
        expected = model(x)
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            clone.eval()
            assert torch.equal(clone(x), expected)
            assert clone.state_dict().keys() == model.state_dict().keys()


def test_torch_save_whole_module(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    clone = torch.load(buffer, weights_only=False)  # our own module, written just above
    x = small_input(model)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))


def test_jit_trace_and_fx_symbolic_trace(model):
    x = small_input(model)
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x)
        assert torch.allclose(traced(x), expected, atol=1e-5)
        graph_module = torch.fx.symbolic_trace(model)
        assert torch.allclose(graph_module(x), expected, atol=1e-5)


def test_state_dict_round_trip_between_two_builds(model):
    other = archspec.load(ROOT / "specs" / f"{model.arch_name}.yaml").eval()
    other.load_state_dict(model.state_dict(), strict=True)
    x = small_input(model)
    with torch.no_grad():
        assert torch.equal(other(x), model(x))


def test_batch_one_and_input_size_independence():
    model = archspec.load(ROOT / "specs/resnet50.yaml").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 160, 128)).shape == (1, 1000)
