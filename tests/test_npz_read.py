"""A ``.npz``'s stored member read straight into the array (issue #11): same array, checks."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import segaudit.io._formats as formats
from segaudit.io import DatasetError, read_probs


def _array(dtype: str = "float16") -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 7, 9)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_stored_member_reads_as_numpy_reads_it(
    tmp_path: Path, dtype: str, order: str, crc32
) -> None:
    arr = np.asarray(_array(dtype), order=order)
    np.savez(tmp_path / "a.npz", logits=arr)
    got = read_probs(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as npz:
        expected = npz["logits"]
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert got.flags.writeable and got.flags.c_contiguous == expected.flags.c_contiguous


def test_the_direct_read_serves_stored_members_only(tmp_path: Path, monkeypatch) -> None:
    calls: list[bool] = []
    direct = formats._stored_data

    def spy(*args, **kwargs):
        out = direct(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(formats, "_stored_data", spy)
    np.savez(tmp_path / "s.npz", logits=_array())
    np.savez_compressed(tmp_path / "c.npz", logits=_array())
    assert np.array_equal(read_probs(tmp_path / "s.npz"), _array())
    assert np.array_equal(read_probs(tmp_path / "c.npz"), _array())  # zipfile's own reading
    assert calls == [True, False]


@pytest.fixture(params=["zlib-ng", "zlib"])
def crc32(request, monkeypatch):
    """The CRC-32 the reader uses: zlib-ng's (the io and cli extras install it), or zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(formats, "_crc32", lambda: zlib.crc32)
    else:
        pytest.importorskip("zlib_ng", reason="zlib-ng is not installed (the io extra has it)")
        assert formats._crc32() is not zlib.crc32
    return formats._crc32()


@pytest.mark.parametrize("size", [0, 1, 7, 4096, 1 << 20])
def test_both_crc32_give_zlib_values(crc32, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    assert crc32(data) == zlib.crc32(data)
    assert crc32(data[size // 2 :], crc32(data[: size // 2])) == zlib.crc32(data)


def test_a_damaged_stored_member_fails_its_crc_as_with_zipfile(tmp_path: Path, crc32) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, logits=_array())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("logits.npy")
    data[info.header_offset + 200] ^= 0xFF  # a byte of the array, past the headers
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"Bad CRC-32 for file 'logits.npy'"):
        read_probs(path)
