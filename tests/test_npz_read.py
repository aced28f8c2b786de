"""A ``.npz``'s stored member read straight into the array (issue #11): same array, checks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

import segaudit.io._formats as formats
from segaudit.io import DatasetError, read_probs


def _array(dtype: str = "float16") -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 7, 9)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_stored_member_reads_as_numpy_reads_it(tmp_path: Path, dtype: str, order: str) -> None:
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


def test_a_damaged_stored_member_fails_its_crc_as_with_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, logits=_array())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("logits.npy")
    data[info.header_offset + 200] ^= 0xFF  # a byte of the array, past the headers
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"Bad CRC-32 for file 'logits.npy'"):
        read_probs(path)
