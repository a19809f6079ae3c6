"""Pretrained weights declared in a spec (`weights:`): download, SHA-256 check, cache, offline use, caps.

Every download comes from a local HTTP server on 127.0.0.1 serving files the test writes; no real URL is used.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from conftest import ROOT

import archspec
from archspec.errors import ArchspecError

TINY = """archspec: 1
name: tiny
input: [4]
weights:
  good: {{url: "{url}/tiny.pth", sha256: "{sha}", format: torch, license: MIT}}
  prefix: {{url: "{url}/tiny.pth", sha256: "{prefix}"}}
  safe: {{url: "{url}/tiny.safetensors", sha256: "{safe_sha}", format: safetensors}}
  wrong: {{url: "{url}/tiny.pth", sha256: "{wrong}"}}
  missing: {{url: "{url}/nothing.pth", sha256: "{sha}"}}
nodes:
  - {{name: fc, block: linear, out: 2}}
"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 in a thread, serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny(tmp_path, server, monkeypatch):
    """The tiny spec with weights served locally; returns (spec path, reference state_dict, cache folder)."""
    _, served, url = server
    reference = archspec.load(ROOT / "tests/bad_weights/tiny.yaml", seed=3)
    torch.save(reference.state_dict(), served / "tiny.pth")
    archspec.save(reference, served / "tiny.safetensors")
    sha = sha256(served / "tiny.pth")
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.format(url=url, sha=sha, prefix=sha[:8], safe_sha=sha256(served / "tiny.safetensors"),
                                wrong=wrong))
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARCHSPEC_CACHE", str(cache))
    return spec, reference.state_dict(), cache


def cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def same(model: torch.nn.Module, state: dict) -> bool:
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("tag", ["good", "prefix", "safe"])
def test_download_verify_and_load(tiny, tag):
    spec, state, cache = tiny
    model = archspec.load(spec, pretrained=tag, seed=0)
    assert same(model, state)
    files = cached_files(cache)
    assert len(files) == 1 and not files[0].name.startswith(".")  # no temporary file left behind


def test_a_wrong_digest_is_a_located_error_and_the_file_is_removed(tiny, capsys):
    spec, _, cache = tiny
    with pytest.raises(ArchspecError) as info:
        archspec.load(spec, pretrained="wrong")
    err = info.value
    assert err.code == "weights.sha256" and err.location.file == str(spec) and err.location.line == 8
    assert cached_files(cache) == []
    rc = archspec.cli_main(["build", str(spec), "--pretrained", "wrong"])
    out = capsys.readouterr().err
    assert rc == 1 and f"{spec}:8:" in out and "weights.wrong.sha256" in out and "[weights.sha256]" in out
    assert cached_files(cache) == []


def test_the_cache_is_used_offline(tiny, server, capsys):
    spec, state, cache = tiny
    assert archspec.cli_main(["build", str(spec), "--pretrained", "good"]) == 0
    assert "downloading" in capsys.readouterr().err
    httpd, _, _ = server
    httpd.shutdown()
    httpd.server_close()
    assert same(archspec.load(spec, pretrained="good"), state)
    assert archspec.cli_main(["build", str(spec), "--pretrained", "good"]) == 0
    assert "downloading" not in capsys.readouterr().err
    with pytest.raises(ArchspecError) as info:  # not cached, and the server is gone
        archspec.load(spec, pretrained="safe")
    assert info.value.code == "weights.download" and info.value.location.line == 7


def test_a_damaged_cache_file_is_fetched_again(tiny):
    spec, state, cache = tiny
    archspec.load(spec, pretrained="good")
    [cached] = cached_files(cache)
    cached.write_bytes(b"garbage")
    assert same(archspec.load(spec, pretrained="good"), state)
    assert sha256(cached) != hashlib.sha256(b"garbage").hexdigest()


def test_download_errors_are_located(tiny, capsys):
    spec, _, _ = tiny
    assert archspec.cli_main(["build", str(spec), "--pretrained", "missing"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:9:" in err and "[weights.download]" in err and "404" in err
    assert archspec.cli_main(["build", str(spec), "--pretrained", "goood"]) == 1
    err = capsys.readouterr().err
    assert "[weights.unknown_tag]" in err and "did you mean 'good'" in err
    assert archspec.cli_main(["build", str(ROOT / "specs/osnet_x0_25.yaml"), "--pretrained", "imagenet"]) == 1
    assert "declares no pretrained weights" in capsys.readouterr().err
    assert archspec.cli_main(["build", str(spec), "--pretrained", "good", "--meta"]) == 2


def test_the_size_cap(tiny, capsys, monkeypatch):
    spec, _, cache = tiny
    small = archspec.Limits(max_download_bytes=64)
    with pytest.raises(ArchspecError) as info:
        archspec.load(spec, pretrained="good", limits=small)
    assert info.value.code == "limit.download" and info.value.exit_code == 3 and cached_files(cache) == []
    assert "announces" in info.value.message
    # without Content-Length the cap is checked while reading
    monkeypatch.setattr(Quiet, "send_header", lambda self, k, v: None if k == "Content-Length" else
                        http.server.SimpleHTTPRequestHandler.send_header(self, k, v))
    monkeypatch.setattr(Quiet, "protocol_version", "HTTP/1.0")
    with pytest.raises(ArchspecError) as info:
        archspec.load(spec, pretrained="good", limits=small)
    assert info.value.code == "limit.download" and "stopped after" in info.value.message and cached_files(cache) == []
    assert archspec.cli_main(["build", str(spec), "--pretrained", "good", "--max-download-mb", "1"]) == 0


@pytest.mark.parametrize("digest, line", [("0676ba6", "sha256 must be"), ("xyz12345", "sha256 must be"),
                                          ("12345678", "quoted string")])
def test_short_or_malformed_digests_are_refused_at_validate(tmp_path, capsys, digest, line):
    spec = tmp_path / "short.yaml"
    quoted = digest if digest.isdigit() else f'"{digest}"'
    spec.write_text(f'archspec: 1\nname: s\ninput: [4]\nweights:\n  imagenet: {{url: "http://127.0.0.1/x.pth", '
                    f'sha256: {quoted}}}\nnodes:\n  - {{name: fc, block: linear, out: 2}}\n')
    assert archspec.cli_main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:5:" in err and "weights.imagenet.sha256" in err and "[schema.sha256]" in err and line in err


def test_port_order_needs_a_torch_checkpoint(tmp_path, capsys):
    spec = tmp_path / "order.yaml"
    spec.write_text('archspec: 1\nname: s\ninput: [4]\nweights:\n  w: {url: "http://127.0.0.1/x.safetensors", '
                    'sha256: "0123abcd", format: safetensors, port: order}\nnodes:\n  - {name: fc, block: linear, '
                    'out: 2}\n')
    assert archspec.cli_main(["validate", str(spec)]) == 1
    assert "[schema.weights_port]" in capsys.readouterr().err


def test_shipped_weights_are_torchvisions_published_checkpoints():
    """The URLs and digest prefixes are torchvision's own (its file names carry the SHA-256 prefix)."""
    try:
        from torchvision.models import MobileNet_V2_Weights, ResNet50_Weights, ResNet101_Weights, ResNet152_Weights
    except Exception:
        pytest.skip("torchvision is not installed")
    expected = {"resnet50": ResNet50_Weights, "resnet101": ResNet101_Weights, "resnet152": ResNet152_Weights,
                "mobilenet_v2": MobileNet_V2_Weights}
    for name, enum in expected.items():
        for spec in (name, f"{name}_reid"):
            if spec == "mobilenet_v2_reid":
                continue
            weights = archspec.compile(spec).weights
            for tag, member in (("imagenet", enum.IMAGENET1K_V1), ("imagenet_v2", enum.IMAGENET1K_V2)):
                assert weights[tag].url == member.url
                assert member.url.rsplit("-", 1)[1].startswith(weights[tag].sha256)


def test_a_variant_does_not_inherit_its_bases_weights(tmp_path):
    base = (ROOT / "specs/resnet50.yaml").read_text()
    (tmp_path / "resnet50.yaml").write_text(base)
    (tmp_path / "r26.yaml").write_text("archspec: 1\nname: r26\nextends: resnet50.yaml\nparams:\n"
                                       "  layers: [2, 2, 2, 2]\n")
    assert archspec.compile(tmp_path / "resnet50.yaml").weights
    assert archspec.compile(tmp_path / "r26.yaml").weights == {}


def test_drop_and_order_entries(tmp_path, server, monkeypatch):
    """An entry that drops a classifier and one that maps by order, both through the checked loader."""
    _, served, url = server
    monkeypatch.setenv("ARCHSPEC_CACHE", str(tmp_path / "cache"))
    donor = archspec.load(ROOT / "specs/osnet_x0_25.yaml", seed=1)
    renamed = {f"m.t{i:04d}": v for i, v in enumerate(donor.state_dict().values())}
    torch.save(renamed, served / "renamed.pth")
    torch.save({**donor.state_dict(), "head.weight": torch.ones(3)}, served / "donor.pth")
    order, nofc = sha256(served / "renamed.pth"), sha256(served / "donor.pth")[:12]
    text = (ROOT / "specs/osnet_x0_25.yaml").read_text().replace("extends: osnet_x1_0.yaml", (
        f'extends: osnet_x1_0.yaml\nweights:\n  order: {{url: "{url}/renamed.pth", sha256: "{order}", port: order}}\n'
        f'  nofc: {{url: "{url}/donor.pth", sha256: "{nofc}", drop: ["head.*"]}}'))
    (tmp_path / "osnet_x1_0.yaml").write_text((ROOT / "specs/osnet_x1_0.yaml").read_text())
    (tmp_path / "v.yaml").write_text(text)
    model = archspec.load(tmp_path / "v.yaml", pretrained="order")
    assert same(model, donor.state_dict())
    assert same(archspec.load(tmp_path / "v.yaml", pretrained="nofc"), donor.state_dict())
    with pytest.raises(ArchspecError) as info:  # the loader stays strict: a new head is not filled in silently
        archspec.load(tmp_path / "v.yaml", pretrained="nofc", num_classes=10)
    assert info.value.code == "weights.mismatch"


def test_the_docs_weights_examples_validate(tmp_path):
    """The `weights:` examples of README.md and docs/spec-language.md are valid entries."""
    import re

    for doc in ("README.md", "docs/spec-language.md"):
        block = next(b for b in re.findall(r"```yaml\n(.*?)```", (ROOT / doc).read_text(), re.S)
                     if b.startswith("weights:"))
        spec = tmp_path / "w.yaml"
        spec.write_text(f"archspec: 1\nname: w\ninput: [4]\n{block}nodes:\n  - {{name: fc, block: linear, out: 2}}\n")
        weights = archspec.compile(spec).weights
        assert weights["imagenet"].url.endswith("resnet50-0676ba61.pth") and weights["imagenet"].sha256 == "0676ba61"
