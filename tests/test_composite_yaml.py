"""Users define new blocks in YAML, with no Python: here a block none of the seeds has."""

from __future__ import annotations

import torch

import archspec

SPEC = """
archspec: 1
name: tiny_inception
description: A block no seed has - an Inception-style mixer with a shared squeeze conv.
input: [3, 32, 32]
params:
  width: {type: int, default: 16}
blocks:
  Mixer:
    block: Mixer
    doc: Three branches (1x1, 3x3, 5x5 via a shared 1x1 squeeze), concatenated, with a residual projection.
    params:
      out: {type: int}
      squeeze: {type: int, default: 8}
    let:
      branch: out // 4
    nodes:
      - {name: squeeze, block: conv2d, out: squeeze, kernel: 1}
      - {name: b1, block: conv2d, out: branch, kernel: 1, from: input}
      - {name: b3, block: conv2d, out: branch, kernel: 3, padding: 1, from: squeeze}
      - {name: b5, block: conv2d, out: "out - 2 * branch", kernel: 5, padding: 2, from: squeeze}
      - {name: cat, block: concat, from: [b1, b3, b5]}
      - {name: proj, block: conv2d, out: out, kernel: 1, from: input, when: in_channels != out}
      - {name: sum, block: add, from: [cat, proj]}
      - {name: act, block: swish}
nodes:
  - {name: stem, block: conv2d, out: width, kernel: 3, padding: 1}
  - block: Mixer
    table:
      columns: [name, out]
      rows: [[mix1, 32], [mix2, 32], [mix3, 48]]
  - {name: pool, block: global_avgpool}
  - {name: head, block: linear, out: 10}
"""


def test_user_block_builds_and_runs(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    graph = archspec.compile(path)
    model = archspec.build(graph)
    assert sum(p.numel() for p in model.parameters()) == graph.total_params
    assert "mix1.proj.weight" in model.state_dict() and "mix2.proj.weight" not in model.state_dict()
    assert type(model.mix1).__name__ == "Mixer" and "Mixer(" in str(model)
    seen = {}
    model.mix2.register_forward_hook(lambda module, args, out: seen.update(inp=args[0], out=out))
    with torch.no_grad():
        model.eval()(torch.randn(2, *graph.input_shape))
        assert torch.equal(model.mix2(seen["inp"]), seen["out"])  # the block runs standalone, as in the model
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    # oracle: the same network written by hand over the module's own children
    model.eval()
    x = torch.randn(2, 3, 32, 32)

    def mixer(block, h):
        squeezed = block.squeeze(h)
        cat = torch.cat([block.b1(h), block.b3(squeezed), block.b5(squeezed)], 1)
        identity = block.proj(h) if hasattr(block, "proj") else h
        return torch.nn.functional.silu(cat + identity)

    with torch.no_grad():
        h = model.stem(x)
        for name in ("mix1", "mix2", "mix3"):
            h = mixer(getattr(model, name), h)
        expected = model.head(h.mean((2, 3)))
        assert torch.allclose(model(x), expected, atol=1e-5)
