"""Regenerate the hostile weight files beside this script: `python tests/bad_weights/make.py`.

Each file is a weights file for tiny.yaml (fc.weight 2x4, fc.bias 2) broken in one way; expected.json gives
the code that loading it must report. They are small and committed, so the test needs no generator.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def safetensors(name: str, header: bytes | dict, data: bytes = b"", length: int | None = None) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    (HERE / name).write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD = {"fc.weight": entry("F32", [2, 4], 0, 32), "fc.bias": entry("F32", [2], 32, 40)}


def torch_file(name: str, obj) -> None:
    torch.save(obj, HERE / name)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def main() -> None:
    weight, bias = torch.zeros(2, 4), torch.zeros(2)
    safetensors("good.safetensors", GOOD, b"\0" * 40)
    dup = json.dumps(GOOD)[:-1] + ', "fc.bias": ' + json.dumps(entry("F32", [2], 32, 40)) + "}"
    safetensors("duplicate_key.safetensors", dup.encode(), b"\0" * 40)
    safetensors("header_length.safetensors", GOOD, b"\0" * 40, length=1 << 60)
    safetensors("offsets_outside.safetensors", {**GOOD, "fc.bias": entry("F32", [2], 32, 4000)}, b"\0" * 40)
    safetensors("offsets_wrong_size.safetensors", {**GOOD, "fc.bias": entry("F32", [2], 32, 36)}, b"\0" * 40)
    safetensors("unknown_dtype.safetensors", {**GOOD, "fc.bias": entry("Q4", [2], 32, 40)}, b"\0" * 40)
    safetensors("not_json.safetensors", b"{not json", b"\0" * 40)
    safetensors("deep_json.safetensors", b"[" * 20_000, b"")
    safetensors("header_list.safetensors", b"[1, 2]", b"")
    safetensors("shape_negative.safetensors", {**GOOD, "fc.bias": entry("F32", [-2], 32, 40)}, b"\0" * 40)
    safetensors("metadata_not_strings.safetensors", {**GOOD, "__metadata__": {"a": 1}}, b"\0" * 40)
    (HERE / "short.safetensors").write_bytes(b"\x01\x02")
    torch_file("nonstring_key.pt", {"fc.weight": weight, 7: bias})
    torch_file("sparse.pt", {"fc.weight": weight.to_sparse(), "fc.bias": bias})
    torch_file("meta.pt", {"fc.weight": torch.zeros(2, 4, device="meta"), "fc.bias": bias})
    torch_file("quantized.pt", {"fc.weight": torch.quantize_per_tensor(weight, 0.1, 0, torch.qint8), "fc.bias": bias})
    torch_file("nested.pt", {"fc.weight": torch.nested.nested_tensor([torch.zeros(4), torch.zeros(4)]),
                             "fc.bias": bias})
    torch_file("not_a_state_dict.pt", [weight, bias])
    torch_file("pickle_payload.pt", {"fc.weight": Evil(), "fc.bias": bias})
    torch_file("good.pt", {"fc.weight": weight, "fc.bias": bias})
    good = zipfile.ZipFile(HERE / "good.pt")
    with zipfile.ZipFile(HERE / "compressed.pt", "w", zipfile.ZIP_DEFLATED) as out:
        for info in good.infolist():
            out.writestr(info.filename, good.read(info.filename))
    with zipfile.ZipFile(HERE / "duplicate_record.pt", "w", zipfile.ZIP_STORED) as out:
        for info in good.infolist():
            out.writestr(info.filename, good.read(info.filename))
        out.writestr(good.infolist()[0].filename, good.read(good.infolist()[0].filename))
    raw = (HERE / "good.pt").read_bytes()
    (HERE / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (HERE / "garbage.pt").write_bytes(b"not a checkpoint at all")
    buffer = io.BytesIO()
    pickle.dump({"fc.weight": [0.0] * 8}, buffer)
    (HERE / "plain_pickle.pt").write_bytes(buffer.getvalue())
    (HERE / "wrong_suffix.npy").write_bytes(b"\x93NUMPY")


if __name__ == "__main__":
    main()
