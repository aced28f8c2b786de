"""The kernels' 512-bit vector hint: per function, the same results."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")


def _scaled(wide: bool):
    from segaudit.kernels._numba import _wide_vectors

    def scale(x, out):
        if wide:
            _wide_vectors()
        for i in range(x.shape[0]):
            out[i] = x[i] * 1.5 + 0.25

    return numba.njit(scale)  # not cached: its assembly can be read


def test_the_hint_gives_512_bit_vectors_and_the_same_results():
    import llvmlite.binding as llb

    x = np.arange(1000, dtype=np.float64)
    wide, plain = _scaled(True), _scaled(False)
    out_wide, out_plain = np.empty_like(x), np.empty_like(x)
    wide(x, out_wide)
    plain(x, out_plain)
    np.testing.assert_array_equal(out_wide, out_plain)
    if "+avx512f" not in llb.get_host_cpu_features().flatten():
        pytest.skip("this CPU has no AVX-512: the hint changes nothing here (results checked)")
    assert "zmm" in wide.inspect_asm(wide.signatures[0])


def test_an_llvmlite_that_refuses_the_attributes_gets_no_hint_and_the_same_code(monkeypatch):
    from llvmlite.ir import values

    from segaudit.kernels._numba import _WIDE_VECTORS

    add = values.FunctionAttributes.add

    def refuse(self, name):
        if name in _WIDE_VECTORS:
            raise ValueError(f"unknown attr {name!r}")
        add(self, name)

    monkeypatch.setattr(values.FunctionAttributes, "add", refuse)
    x = np.arange(100, dtype=np.float64)
    out = np.empty_like(x)
    wide = _scaled(True)  # compiles here, with the refusing attribute set
    wide(x, out)
    np.testing.assert_array_equal(out, x * 1.5 + 0.25)
    assert '"prefer-vector-width"' not in wide.inspect_llvm(wide.signatures[0])
