"""Weights loading, refusal by refusal (issue 18, mutation testing of archspec/backends/weights.py).

Every refusal is checked for its exact code, message, hint and location (the weights file, line 0, column 0),
on files written here: malformed safetensors headers at and beyond each limit, .pt archives, wrong dtypes and
shapes, and the mismatch report grouped by spec node.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zipfile
from pathlib import Path

import pytest
import torch

import archspec
from archspec.backends import weights
from archspec.backends.weights import WeightsError, check, load_weights, read_header, read_state, save_weights

SPEC = ("archspec: 1\nname: t\ninput: [3, 6, 6]\nnodes:\n  - {name: conv, block: conv2d, out: 4, kernel: 3}\n"
        "  - {name: bn, block: batchnorm}\n  - {name: pool, block: global_avgpool}\n"
        "  - {name: fc, block: linear, out: 2}\n")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "t.yaml"
    path.write_text(SPEC)
    graph = archspec.compile(path)
    return graph, archspec.build(graph)


def refusal(fn, *args) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        fn(*args)
    return info.value


def assert_refused(err: WeightsError, path: Path, code: str, message: str, hint: str = "") -> None:
    assert (err.code, err.message, err.hint) == (code, message, hint)
    assert (err.location.file, err.location.line, err.location.col, err.location.path) == (str(path), 0, 0, ())


def write_safetensors(path: Path, header, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def entry(dtype: str, shape, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ---- safetensors headers ---------------------------------------------------------------------------------------
def test_a_good_header_is_read_exactly(tmp_path):
    header = {"__metadata__": {"format": "pt"}, "a": entry("F32", [2, 3], 0, 24), "b": entry("U16", [], 24, 26),
              "c": entry("BF16", [0, 5], 26, 26), "d": entry("BOOL", [3], 26, 29), "e": entry("I8", [1] * 16, 29, 30)}
    path = write_safetensors(tmp_path / "w.safetensors", header, b"\0" * 30)
    assert read_header(path) == {"a": ((2, 3), torch.float32), "b": ((), None), "c": ((0, 5), torch.bfloat16),
                                 "d": ((3,), torch.bool), "e": ((1,) * 16, torch.int8)}
    assert read_header(Path(str(path).replace(".safetensors", ".SafeTensors")).with_name("w.safetensors")) == \
        read_header(path)


def test_upper_case_suffixes_are_recognised(tmp_path):
    path = write_safetensors(tmp_path / "w.SAFETENSORS", {"a": entry("F64", [1], 0, 8)}, b"\0" * 8)
    assert read_header(path) == {"a": ((1,), torch.float64)}
    torch.save({"a": torch.zeros(2, dtype=torch.int32)}, tmp_path / "w.PTH")
    assert read_header(tmp_path / "w.PTH") == {"a": ((2,), torch.int32)}
    torch.save({"a": torch.zeros(1, 2)}, tmp_path / "w.bin")
    assert read_header(tmp_path / "w.bin") == {"a": ((1, 2), torch.float32)}


def test_unknown_suffix(tmp_path):
    path = tmp_path / "w.npy"
    path.write_bytes(b"x")
    assert_refused(refusal(read_header, path), path, "weights.format", "unknown weights format '.npy'",
                   "use .safetensors, .pt or .pth")
    path = tmp_path / "w"
    path.write_bytes(b"x")
    assert_refused(refusal(read_header, path), path, "weights.format", "unknown weights format ''",
                   "use .safetensors, .pt or .pth")


def header_error(tmp_path, header, data: bytes = b"", length: int | None = None) -> tuple[WeightsError, Path]:
    path = write_safetensors(tmp_path / "w.safetensors", header, data, length)
    return refusal(read_header, path), path


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x01\x00\x00\x00\x00\x00\x00"])
def test_short_file(tmp_path, raw):
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    assert_refused(refusal(read_header, path), path, "weights.header", "the file is too short to be safetensors")


def test_header_length_against_the_file_size(tmp_path):
    err, path = header_error(tmp_path, b"{}", b"", length=3)  # 8 + 2 bytes: one byte short
    assert_refused(err, path, "weights.header", "the safetensors header claims 3 bytes (the file has 10)")
    err, path = header_error(tmp_path, b"{}" + b" " * 1500, b"", length=2000)
    assert_refused(err, path, "weights.header", "the safetensors header claims 2,000 bytes (the file has 1,510)")
    path = write_safetensors(tmp_path / "w.safetensors", b"{}", b"", length=2)  # exactly the rest of the file
    assert read_header(path) == {}
    path = write_safetensors(tmp_path / "w.safetensors", b"{}   ", b"", length=2)  # the rest is data
    assert read_header(path) == {}
    err, path = header_error(tmp_path, b"", b"", length=0)  # 8 bytes, an empty header
    assert_refused(err, path, "weights.header", "the safetensors header is not valid JSON: JSONDecodeError")


def test_header_length_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "MAX_HEADER", 10)
    path = write_safetensors(tmp_path / "w.safetensors", b"{}" + b" " * 8, b"\0" * 50)
    assert read_header(path) == {}
    err, path = header_error(tmp_path, b"{}" + b" " * 9, b"\0" * 50)
    assert_refused(err, path, "weights.header", "the safetensors header claims 11 bytes (the file has 69)")


def test_tensor_count_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "MAX_TENSORS", 2)
    two = {"a": entry("U8", [1], 0, 1), "b": entry("U8", [1], 1, 2)}
    path = write_safetensors(tmp_path / "w.safetensors", {**two, "__metadata__": {}}, b"\0" * 2)
    assert set(read_header(path)) == {"a", "b"}
    err, path = header_error(tmp_path, {**two, "c": entry("U8", [1], 2, 3)}, b"\0" * 3)
    assert_refused(err, path, "weights.too_many", "the file holds more than 2 tensors")
    monkeypatch.setattr(weights, "MAX_TENSORS", 1000)
    many = {f"t{i}": entry("U8", [1], i, i + 1) for i in range(1001)}
    err, path = header_error(tmp_path, many, b"\0" * 1001)
    assert_refused(err, path, "weights.too_many", "the file holds more than 1,000 tensors")
    monkeypatch.setattr(weights, "MAX_TENSORS", 2)
    # entries without data_offsets pass the quick count; the parsed count then refuses them
    err, path = header_error(tmp_path, {"a": 1, "b": 1, "c": 1, "d": 1})
    assert_refused(err, path, "weights.too_many", "the file holds 4 tensors (at most 2)")
    err, path = header_error(tmp_path, {"a": 1, "b": 1, "c": 1})  # at the limit: checked one by one
    assert_refused(err, path, "weights.header", "tensor 'a': a header entry needs dtype, shape and data_offsets only")
    monkeypatch.setattr(weights, "MAX_TENSORS", 1000)
    err, path = header_error(tmp_path, {str(i): 1 for i in range(1002)})
    assert_refused(err, path, "weights.too_many", "the file holds 1,002 tensors (at most 1,000)")


def test_duplicate_key(tmp_path):
    key = "k" * 100
    text = json.dumps({key: entry("U8", [], 0, 1)})[:-1] + f', "{key}": 1}}'
    err, path = header_error(tmp_path, text.encode(), b"\0")
    assert_refused(err, path, "weights.duplicate_key", f"the safetensors header names {'k' * 80} twice",
                   "a reader would silently keep one of them; the file is malformed")
    err, path = header_error(tmp_path, b'{"x": {}, "y": {"x": 1, "x": 2}}')
    assert_refused(err, path, "weights.duplicate_key", "the safetensors header names x twice",
                   "a reader would silently keep one of them; the file is malformed")


@pytest.mark.parametrize("raw, kind", [(b"{not json", "JSONDecodeError"), (b'{"\xff": 1}', "UnicodeDecodeError"),
                                       (b"[" * 20_000, "RecursionError")])
def test_header_that_is_not_json(tmp_path, raw, kind):
    err, path = header_error(tmp_path, raw)
    assert_refused(err, path, "weights.header", f"the safetensors header is not valid JSON: {kind}")


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"7", b"null"])
def test_header_that_is_not_an_object(tmp_path, raw):
    err, path = header_error(tmp_path, raw)
    assert_refused(err, path, "weights.header", "the safetensors header is not a JSON object")


@pytest.mark.parametrize("metadata", ["text", [], {"a": 1}, {"a": "b", "c": None}])
def test_metadata_must_map_strings(tmp_path, metadata):
    err, path = header_error(tmp_path, {"__metadata__": metadata})
    assert_refused(err, path, "weights.header", "the safetensors __metadata__ is not a map of strings")


LONG = "n" * 100


@pytest.mark.parametrize("key, value, message", [
    ("a", [1], "tensor 'a': a header entry needs dtype, shape and data_offsets only"),
    ("a", {"dtype": "F32", "shape": [1]}, "tensor 'a': a header entry needs dtype, shape and data_offsets only"),
    ("a", {**entry("F32", [1], 0, 4), "x": 1}, "tensor 'a': a header entry needs dtype, shape and data_offsets only"),
    (LONG, 1, f"tensor {'n' * 80!r}: a header entry needs dtype, shape and data_offsets only"),
    ("a", entry("Q4", [1], 0, 4), "tensor 'a': unknown dtype 'Q4'"),
    ("a", entry("F" * 30, [1], 0, 4), f"tensor 'a': unknown dtype {'F' * 20!r}"),
    ("a", entry(["F32"], [1], 0, 4), "tensor 'a': unknown dtype \"['F32']\""),
    ("a", entry({"F32": 1}, [1], 0, 4), "tensor 'a': unknown dtype \"{'F32': 1}\""),
    (LONG, entry("Q4", [1], 0, 4), f"tensor {'n' * 80!r}: unknown dtype 'Q4'"),
    ("a", entry("F32", 4, 0, 4), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("F32", [1] * 17, 0, 4), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("F32", [2.0], 0, 8), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("F32", [True], 0, 4), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("F32", [2, -1], 0, 4), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("F32", [1 << 48], 0, 4), "tensor 'a': the shape is not a list of sizes"),
    ("a", entry("U8", [(1 << 48) - 1], 0, 4), "tensor 'a': its data range does not match its shape and dtype"),
    (LONG, entry("F32", "x", 0, 4), f"tensor {'n' * 80!r}: the shape is not a list of sizes"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": 4}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [0]}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4]}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [False, 4]}, "tensor 'a': data_offsets are outside the file"),
    ("a", {"dtype": "F32", "shape": [1], "data_offsets": [0, True]}, "tensor 'a': data_offsets are outside the file"),
    ("a", entry("F32", [1], -4, 0), "tensor 'a': data_offsets are outside the file"),
    ("a", entry("F32", [1], 8, 4), "tensor 'a': data_offsets are outside the file"),
    ("a", entry("F32", [1], 6, 10), "tensor 'a': data_offsets are outside the file"),  # 8 data bytes
    (LONG, entry("F32", [1], 6, 10), f"tensor {'n' * 80!r}: data_offsets are outside the file"),
    ("a", entry("F32", [1], 4, 6), "tensor 'a': its data range does not match its shape and dtype"),
    ("a", entry("F16", [2], 0, 8), "tensor 'a': its data range does not match its shape and dtype"),
    (LONG, entry("F32", [2], 0, 4), f"tensor {'n' * 80!r}: its data range does not match its shape and dtype"),
])
def test_malformed_entries(tmp_path, key, value, message):
    err, path = header_error(tmp_path, {key: value}, b"\0" * 8)
    assert_refused(err, path, "weights.header", message)


@pytest.mark.parametrize("dtype, size", sorted(weights.SAFETENSORS_SIZES.items()))
def test_every_dtype_size(tmp_path, dtype, size):
    path = write_safetensors(tmp_path / "w.safetensors", {"a": entry(dtype, [3, 2], 0, 6 * size)}, b"\0" * 6 * size)
    assert read_header(path) == {"a": ((3, 2), weights.SAFETENSORS_DTYPES.get(dtype))}
    err, path = header_error(tmp_path, {"a": entry(dtype, [3, 2], 0, 6 * size + 1)}, b"\0" * (6 * size + 1))
    assert err.message == "tensor 'a': its data range does not match its shape and dtype"


def test_offsets_at_the_end_of_the_file(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", {"a": entry("F32", [2], 4, 12)}, b"\0" * 12)
    assert read_header(path) == {"a": ((2,), torch.float32)}


# ---- files that are not regular, or cannot be opened ------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_not_a_regular_file(tmp_path, suffix):
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    assert_refused(refusal(read_header, folder), folder, "io.not_a_file", "the weights file is not a regular file",
                   "name a regular file")
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    assert_refused(refusal(read_header, fifo), fifo, "io.not_a_file", "the weights file is not a regular file",
                   "name a regular file")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_unreadable_paths(tmp_path, suffix):
    missing = tmp_path / f"missing{suffix}"
    assert_refused(refusal(read_header, missing), missing, "io.unreadable",
                   "cannot read file: No such file or directory", "check the path")
    nul = tmp_path / f"a\0b{suffix}"
    assert_refused(refusal(read_header, nul), nul, "io.unreadable", "cannot read file: the path is not valid")


def test_open_regular_flags(tmp_path):
    import fcntl

    path = tmp_path / "w.pt"
    path.write_bytes(b"data")
    with weights._open_regular(path) as fh:
        assert fh.read() == b"data" and fh.mode == "rb"
        assert fcntl.fcntl(fh.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert not os.get_blocking(fh.fileno())


def test_special_file_that_passes_the_first_stat_is_refused_on_the_descriptor(tmp_path, monkeypatch):
    """A FIFO put in place between the stat and the open is opened without blocking, then refused."""
    fifo = tmp_path / "w.safetensors"
    os.mkfifo(fifo)
    regular = tmp_path / "regular"
    regular.write_bytes(b"")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(regular if str(p) == str(fifo) else p, *a, **k))
    result = []
    thread = threading.Thread(target=lambda: result.append(refusal(weights._open_regular, fifo)), daemon=True)
    thread.start()
    thread.join(5)
    if not result:  # the open blocked: release it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail("opening the FIFO blocked")
    assert_refused(result[0], fifo, "io.not_a_file", "the weights file is not a regular file")


# ---- .pt archives -------------------------------------------------------------------------------------------------
def good_pt(path: Path, state=None) -> Path:
    torch.save(state if state is not None else {"fc.weight": torch.zeros(2, 4), "fc.bias": torch.zeros(2)}, path)
    return path


def rezip(source: Path, target: Path, compress: int = zipfile.ZIP_STORED, extra: int = 0, dup: str = "") -> Path:
    with zipfile.ZipFile(source) as good, zipfile.ZipFile(target, "w", compress) as out:
        for info in good.infolist():
            out.writestr(info.filename, good.read(info.filename))
        prefix = good.infolist()[0].filename.split("/")[0]
        for i in range(extra):
            out.writestr(f"{prefix}/extra/{i}", b"")
        if dup:
            out.writestr(dup, b"again")
    return target


def test_compressed_and_duplicate_records(tmp_path):
    good = good_pt(tmp_path / "good.pt")
    first = zipfile.ZipFile(good).infolist()[0].filename
    path = rezip(good, tmp_path / "c.pt", zipfile.ZIP_DEFLATED)
    assert_refused(refusal(read_header, path), path, "weights.compressed",
                   f"record {first!r} is compressed; torch.save never compresses",
                   "save the state_dict again with torch.save")
    path = rezip(good, tmp_path / "d.pt", dup=first)
    assert_refused(refusal(read_header, path), path, "weights.duplicate_key", f"record {first!r} appears twice")
    long_name = "r" * 100
    with zipfile.ZipFile(tmp_path / "l.pt", "w", zipfile.ZIP_STORED) as out:
        out.writestr(long_name, b"")
        out.writestr(long_name, b"")
    path = tmp_path / "l.pt"
    assert refusal(read_header, path).message == f"record {'r' * 80!r} appears twice"
    with zipfile.ZipFile(tmp_path / "lc.pt", "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(long_name, b"")
    assert refusal(read_header, tmp_path / "lc.pt").message == \
        f"record {'r' * 80!r} is compressed; torch.save never compresses"


def test_record_count_limit(tmp_path, monkeypatch):
    good = good_pt(tmp_path / "good.pt")
    records = len(zipfile.ZipFile(good).infolist())
    monkeypatch.setattr(weights, "MAX_TENSORS", 2)
    path = rezip(good, tmp_path / "many.pt", extra=18 - records + 1)  # 19 records
    assert_refused(refusal(read_header, path), path, "weights.too_many",
                   "the archive holds 19 records (at most 2 tensors)")
    at_limit = rezip(good, tmp_path / "limit.pt", extra=18 - records)  # 18 records: read
    assert read_header(at_limit) == {"fc.weight": ((2, 4), torch.float32), "fc.bias": ((2,), torch.float32)}
    monkeypatch.setattr(weights, "MAX_TENSORS", 1000)
    path = rezip(good, tmp_path / "more.pt", extra=1017 - records)
    assert refusal(read_header, path).message == "the archive holds 1,017 records (at most 1,000 tensors)"


def test_state_dict_count_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "MAX_TENSORS", 2)
    path = good_pt(tmp_path / "w.pt", {"a": torch.zeros(1), "b": torch.zeros(1), "c": torch.zeros(1)})
    assert_refused(refusal(read_header, path), path, "weights.too_many", "the file holds 3 tensors (at most 2)")
    path = good_pt(tmp_path / "two.pt", {"a": torch.zeros(1), "b": torch.zeros(1)})
    assert set(read_header(path)) == {"a", "b"}
    monkeypatch.setattr(weights, "MAX_TENSORS", 999)
    path = good_pt(tmp_path / "w.pt", {str(i): torch.zeros(1) for i in range(1000)})
    assert refusal(read_header, path).message == "the file holds 1,000 tensors (at most 999)"


def test_unreadable_archive_error(tmp_path, monkeypatch):
    path = good_pt(tmp_path / "w.pt")

    def broken(*args, **kwargs):
        raise NotImplementedError("zip feature")

    monkeypatch.setattr(zipfile, "ZipFile", broken)
    assert_refused(refusal(read_header, path), path, "weights.unreadable",
                   "cannot read the archive: NotImplementedError")


def test_legacy_format_is_left_to_torch(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"a": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    try:
        header = read_header(path)
    except WeightsError as err:  # torch may refuse mmap on the legacy format: then it is reported, never raised
        assert err.code == "weights.unreadable" and err.message.startswith("cannot read weights: ")
    else:
        assert header == {"a": ((3,), torch.float32)}


def test_torch_load_errors_are_reported(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all")
    err = refusal(read_header, path)
    assert (err.code, err.hint) == ("weights.unreadable",
                                    "is it a safetensors file or a state_dict saved with torch.save?")
    assert err.message.startswith("cannot read weights: RuntimeError: ")
    assert (err.location.file, err.location.line) == (str(path), 0)
    raw = (good_pt(tmp_path / "g.pt")).read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    err = refusal(read_header, path)
    assert err.code == "weights.unreadable" and len(err.message) <= len("cannot read weights: RuntimeError: ") + 200


def test_long_exception_text_is_cut(tmp_path, monkeypatch):
    path = good_pt(tmp_path / "w.pt")

    def boom(p):
        raise RuntimeError("x" * 500)

    monkeypatch.setattr(weights, "_torch_load", boom)
    assert_refused(refusal(read_header, path), path, "weights.unreadable",
                   f"cannot read weights: RuntimeError: {'x' * 200}",
                   "is it a safetensors file or a state_dict saved with torch.save?")


@pytest.mark.parametrize("state", [[torch.zeros(1)], {"state_dict": {"a": 1}}, {"a": torch.zeros(1), "b": 2}, 5])
def test_not_a_state_dict(tmp_path, state):
    path = good_pt(tmp_path / "w.pt", state)
    assert_refused(refusal(read_header, path), path, "weights.not_a_state_dict",
                   "the file does not hold a state_dict (a mapping of names to tensors)")


def test_wrapped_state_dict(tmp_path):
    path = good_pt(tmp_path / "w.pt", {"state_dict": {"a": torch.zeros(2, dtype=torch.float16)}, "epoch": 3})
    assert read_header(path) == {"a": ((2,), torch.float16)}
    path = good_pt(tmp_path / "v.pt", {"state_dict": torch.zeros(2)})  # a tensor named state_dict
    assert read_header(path) == {"state_dict": ((2,), torch.float32)}


def test_key_and_tensor_kind(tmp_path):
    path = good_pt(tmp_path / "k.pt", {"a": torch.zeros(1), 7: torch.zeros(1)})
    assert_refused(refusal(read_header, path), path, "weights.key", "a state_dict key is not a string (int 7)")
    path = good_pt(tmp_path / "k2.pt", {("x" * 50,): torch.zeros(1)})
    assert refusal(read_header, path).message == f"a state_dict key is not a string (tuple {str(('x' * 50,))[:40]})"
    hint = "save plain tensors (tensor.to_dense(), dequantize())"
    for name, tensor, kind in [
        ("sparse", torch.zeros(2, 2).to_sparse(), "a sparse_coo tensor"),
        ("csr", torch.zeros(2, 2).to_sparse_csr(), "a sparse_csr tensor"),
        ("meta", torch.zeros(2, device="meta"), "a meta tensor"),
        ("quantized", torch.quantize_per_tensor(torch.zeros(2), 0.1, 0, torch.qint8), "a quantized tensor"),
        ("nested", torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)]), "a nested tensor"),
    ]:
        path = good_pt(tmp_path / f"{name}.pt", {"ok": torch.zeros(1), "t" * 90: tensor})
        assert_refused(refusal(read_header, path), path, "weights.tensor_kind",
                       f"tensor {'t' * 80!r} is {kind}; only dense CPU tensors are read", hint)


def test_tensor_kind_names():
    class Sub(torch.Tensor):
        pass

    assert weights._tensor_kind(torch.zeros(1)) == ""
    assert weights._tensor_kind(torch.nn.Parameter(torch.zeros(1))) == ""
    assert weights._tensor_kind(torch.zeros(1).as_subclass(Sub)) == "a Sub"
    assert weights._tensor_kind(torch.zeros(1, device="meta")) == "a meta tensor"


# ---- read_state ---------------------------------------------------------------------------------------------------
def test_read_state_returns_the_tensors(tmp_path):
    state = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    for name in ("w.pt", "w.safetensors"):
        path = tmp_path / name
        if name.endswith(".pt"):
            torch.save(state, path)
        else:
            from safetensors.torch import save_file

            save_file(state, path)
        got = read_state(path)
        assert set(got) == {"a", "b"} and all(torch.equal(got[k], state[k]) for k in state)
        assert got["b"].dtype == torch.int64


def test_read_state_checks_the_header_first(tmp_path):
    err, path = header_error(tmp_path, {"a": entry("Q4", [1], 0, 4)}, b"\0" * 4)
    assert_refused(refusal(read_state, path), path, "weights.header", "tensor 'a': unknown dtype 'Q4'")


def test_read_state_errors(tmp_path, monkeypatch):
    path = good_pt(tmp_path / "w.pt")
    real, calls = weights._torch_load, []

    def second_call_fails(p):
        calls.append(p)
        if len(calls) > 1:
            raise RuntimeError("y" * 300)
        return real(p)

    monkeypatch.setattr(weights, "_torch_load", second_call_fails)
    assert_refused(refusal(read_state, path), path, "weights.unreadable",
                   f"cannot read weights: RuntimeError: {'y' * 200}")
    calls.clear()
    own = WeightsError("own", None, code="weights.own")

    def second_call_refuses(p):
        calls.append(p)
        if len(calls) > 1:
            raise own
        return real(p)

    monkeypatch.setattr(weights, "_torch_load", second_call_refuses)
    assert refusal(read_state, path) is own


def test_read_state_of_safetensors_that_the_reader_refuses(tmp_path, monkeypatch):
    path = write_safetensors(tmp_path / "w.safetensors", {"a": entry("F32", [1], 0, 4)}, b"\0" * 4)
    import safetensors.torch

    def refuse(data):
        raise ValueError("bad")

    monkeypatch.setattr(safetensors.torch, "load", refuse)
    assert_refused(refusal(read_state, path), path, "weights.unreadable", "cannot read weights: ValueError: bad")


# ---- check: the mismatch report -------------------------------------------------------------------------------------
def test_mismatch_report_exact(net, tmp_path):
    graph, model = net
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    header = dict(expected)
    del header["conv.bias"], header["bn.running_var"]
    header["fc.weight"] = ((2, 5), torch.float32)
    header["bn.weight"] = ((4,), torch.float16)
    header["extra.thing"] = ((1,), torch.float32)
    header["loose"] = ((1,), torch.float32)
    header["fc.sub.x"] = ((1,), torch.float32)
    path = tmp_path / "w.safetensors"
    err = refusal(check, model, header, graph, path)
    name = Path(graph.modules["conv"].where.file).name
    assert_refused(err, path, "weights.mismatch",
                   "the weights do not match the model (2 missing, 3 unexpected, 2 differ)\n"
                   f"  missing: conv ({name}:5): bias\n"
                   f"  missing: bn ({name}:6): running_var\n"
                   "  unexpected: <top>: extra.thing, loose\n"
                   f"  unexpected: fc ({name}:8): sub.x\n"
                   f"  shape or dtype differs: bn ({name}:6): weight: file (4,) torch.float16, "
                   "model (4,) torch.float32\n"
                   f"  shape or dtype differs: fc ({name}:8): weight: file (2, 5) torch.float32, "
                   "model (2, 4) torch.float32",
                   "check that the spec and params (--set) match the checkpoint; `archspec port` maps checkpoints "
                   "of other layouts")
    check(model, expected, graph, path)  # a match: no error


def test_mismatch_report_without_a_graph_and_capped(net, tmp_path):
    graph, model = net
    header = {f"head.layer.w{i}": ((1,), torch.float32) for i in range(8)}
    header.update({f"n{i}.w": ((1,), torch.float32) for i in range(45)})
    err = refusal(check, model, header, None, tmp_path / "w.pt")
    lines = err.message.split("\n")
    assert lines[0] == "the weights do not match the model (9 missing, 53 unexpected, 0 differ)"
    assert len(lines) == 41
    assert lines[1] == "  missing: conv: weight, bias"
    assert "  missing: bn: weight, bias, running_mean, running_var, num_batches_tracked" in lines
    assert "  unexpected: head.layer: w0, w1, w2, w3, w4, w5 (+2 more)" in lines
    assert "  unexpected: n0: w" in lines


def test_mismatch_of_a_node_without_a_location(net, tmp_path, monkeypatch):
    graph, model = net
    monkeypatch.setattr(graph.modules["fc"], "where", None)
    header = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items() if k != "fc.bias"}
    assert refusal(check, model, header, graph, tmp_path / "w.pt").message.endswith("\n  missing: fc: bias")


def test_load_weights_loads_and_checks_twice(net, tmp_path, monkeypatch):
    graph, model = net
    source = archspec.build(graph)
    with torch.no_grad():
        for p in source.parameters():
            p.copy_(torch.randn_like(p))
    path = tmp_path / "w.safetensors"
    save_weights(source, path)
    target = archspec.build(graph)
    load_weights(target, path, graph)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    # the file changes between the header check and the read: the second check refuses it
    real = weights.read_state
    monkeypatch.setattr(weights, "read_state", lambda p: {k: v for k, v in real(p).items() if k != "fc.bias"})
    err = refusal(load_weights, archspec.build(graph), str(path), graph)
    name = Path(graph.modules["fc"].where.file).name
    assert err.code == "weights.mismatch"
    assert err.message == f"the weights do not match the model (1 missing, 0 unexpected, 0 differ)\n" \
        f"  missing: fc ({name}:8): bias"
    assert err.location.file == str(path)


def test_load_weights_reports_a_header_mismatch_at_the_file(net, tmp_path):
    graph, model = net
    path = tmp_path / "w.safetensors"
    save_weights(torch.nn.Linear(2, 2), path)
    err = refusal(load_weights, model, path, graph)
    assert err.code == "weights.mismatch"
    assert err.message.startswith("the weights do not match the model (9 missing, 2 unexpected")
    assert (err.location.file, err.location.line) == (str(path), 0)


def test_save_weights_clones_shared_tensors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight  # shared: safetensors refuses shared storage unless cloned apart
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    got = read_state(path)
    assert torch.equal(got["0.weight"], model[0].weight) and torch.equal(got["1.weight"], model[0].weight)
    t = torch.nn.Linear(4, 2)
    t.weight = torch.nn.Parameter(torch.randn(4, 2).t())  # not contiguous
    save_weights(t, path)
    assert torch.equal(read_state(path)["weight"], t.weight)


def test_weights_only_even_where_torch_defaults_to_pickle(tmp_path, monkeypatch):
    """torch 2.4 and 2.5 load full pickles unless told otherwise; the environment variable makes today's torch
    do the same, so only an explicit weights_only=True refuses this file."""
    import fractions

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = good_pt(tmp_path / "w.pt", {"a": torch.zeros(1), "b": fractions.Fraction(1, 2)})
    err = refusal(read_header, path)
    assert err.code == "weights.unreadable"
    # refused by weights_only=True (the Fraction was never unpickled), with the re-save advice
    assert err.message.startswith("the file pickles a Python object (fractions.Fraction), not a state_dict")


def test_checkpoint_saved_on_cuda_loads_on_the_cpu(tmp_path):
    source = good_pt(tmp_path / "cpu.pt", {"a": torch.arange(2.0)})
    path = tmp_path / "cuda.pt"
    with zipfile.ZipFile(source) as good, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in good.infolist():
            data = good.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert data.count(b"X\x03\x00\x00\x00cpu") == 1
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x04\x00\x00\x00cuda")
            out.writestr(info, data)
    assert read_header(path) == {"a": ((2,), torch.float32)}
    state = read_state(path)
    assert state["a"].device.type == "cpu" and torch.equal(state["a"], torch.arange(2.0))


def test_mismatch_groups_of_exactly_six_and_keys_with_a_leading_dot(net, tmp_path):
    graph, model = net
    header = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    header.update({f"fc.x{i}": ((1,), torch.float32) for i in range(6)})
    header.update({f"conv.y{i}": ((1,), torch.float32) for i in range(7)})
    header[".weird"] = ((1,), torch.float32)
    lines = refusal(check, model, header, graph, tmp_path / "w.pt").message.split("\n")
    name = Path(graph.modules["fc"].where.file).name
    assert lines[1:] == [f"  unexpected: fc ({name}:8): x0, x1, x2, x3, x4, x5",
                         f"  unexpected: conv ({name}:5): y0, y1, y2, y3, y4, y5 (+1 more)",
                         "  unexpected: <top>: .weird"]


def test_keys_group_under_the_deepest_declared_module():
    from types import SimpleNamespace

    tg = SimpleNamespace(modules={"a": None, "a.b": None, "c": None})
    assert weights._by_node(["a.b.c.d", "a.x.y", "c.w", "q.r", "top"], tg) == \
        {"a.b": ["a.b.c.d"], "a": ["a.x.y"], "c": ["c.w"], "": ["q.r", "top"]}
    assert weights._by_node(["a.b.c.d", "top"], None) == {"a.b.c": ["a.b.c.d"], "": ["top"]}
