"""A built spec trains under DistributedDataParallel (two gloo processes on CPU) exactly as one process
does on the same data, and under FSDP (fully_shard) too."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import archspec

SPEC = """
archspec: 1
name: tiny_cnn
input: [3, 16, 16]
nodes:
  - {name: conv1, block: conv2d, out: 8, kernel: 3, padding: 1}
  - {name: act1, block: relu}
  - {name: conv2, block: conv2d, out: 16, kernel: 3, stride: 2, padding: 1}
  - {name: act2, block: swish}
  - {name: pool, block: global_avgpool}
  - {name: fc, block: linear, out: 5}
"""
STEPS = 3


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, outputs: list | None = None) -> dict:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    first_grads = {}
    for step in range(STEPS):
        optimizer.zero_grad()
        out = model(x)
        if outputs is not None:
            outputs.append(out.detach().clone())
        F.cross_entropy(out, y).backward()
        if step == 0:
            first_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        optimizer.step()
    return first_grads


def _worker(rank: int, world: int, spec: str, data: str, out: str, port: int) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = archspec.load(spec, seed=0)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        x, y = torch.load(data, weights_only=True)
        grads = _train(ddp, x.chunk(world)[rank], y.chunk(world)[rank])
        grads = {n.removeprefix("module."): g for n, g in grads.items()}
        if rank == 0:
            torch.save({"state": model.state_dict(), "grads": grads}, out)
        from torch.distributed.fsdp import fully_shard

        sharded = archspec.load(spec, seed=0)
        fully_shard(sharded)
        outputs: list = []
        grads = _train(sharded, x.chunk(world)[rank], y.chunk(world)[rank], outputs)
        full = {n: g.full_tensor() for n, g in grads.items()}  # collectives: every rank, same order
        state = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in sharded.state_dict().items()}
        torch.save({"outputs": outputs, "grads": full, "state": state,
                    "sharded": [type(p).__name__ for p in sharded.parameters()]}, f"{out}.fsdp{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_matches_single_process_training(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16, generator=generator), torch.randint(0, 5, (8,), generator=generator)
    torch.save((x, y), tmp_path / "data.pt")
    mp.spawn(_worker, args=(2, str(spec), str(tmp_path / "data.pt"), str(tmp_path / "out.pt"), _free_port()),
             nprocs=2, join=True)
    distributed = torch.load(tmp_path / "out.pt", weights_only=True)
    single = archspec.load(spec, seed=0)
    grads = _train(single, x, y)  # mean loss over all 8 = the average of the two ranks' means
    for name, grad in grads.items():
        assert torch.allclose(grad, distributed["grads"][name], rtol=1e-5, atol=1e-7), name
    for key, value in single.state_dict().items():
        assert torch.allclose(value, distributed["state"][key], rtol=1e-5, atol=1e-7), key


def test_fsdp_matches_single_process_training(tmp_path):
    """fully_shard over two gloo ranks: each rank's output, the first gradients and the weights after
    three SGD steps equal one process training on the whole batch."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 16, 16, generator=generator), torch.randint(0, 5, (8,), generator=generator)
    torch.save((x, y), tmp_path / "data.pt")
    mp.spawn(_worker, args=(2, str(spec), str(tmp_path / "data.pt"), str(tmp_path / "out.pt"), _free_port()),
             nprocs=2, join=True)
    ranks = [torch.load(f"{tmp_path / 'out.pt'}.fsdp{r}", weights_only=True) for r in range(2)]
    single = archspec.load(spec, seed=0)
    outputs: list = []
    grads = _train(single, x, y, outputs)
    for r, rank in enumerate(ranks):
        assert set(rank["sharded"]) == {"DTensor"}  # the parameters really are sharded
        assert len(rank["outputs"]) == STEPS
        for ours, theirs in zip(rank["outputs"], outputs):  # each step's forward on this rank's half
            assert torch.allclose(ours, theirs.chunk(2)[r], rtol=1e-5, atol=1e-6)
    state = single.state_dict()
    for rank in ranks:
        assert set(rank["grads"]) == set(grads) and set(rank["state"]) == set(state)
        for name, grad in grads.items():
            assert torch.allclose(grad, rank["grads"][name], rtol=1e-5, atol=1e-7), name
        for key, value in state.items():
            assert torch.allclose(value, rank["state"][key], rtol=1e-5, atol=1e-7), key
    assert any(not torch.equal(v, archspec.load(spec, seed=0).state_dict()[k]) for k, v in state.items())
