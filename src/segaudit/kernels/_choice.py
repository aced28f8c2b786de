"""Choose the compiled kernels or their numpy twins, at call time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType

__all__ = ["KERNEL_ENV", "get_kernels", "use_threads"]

KERNEL_ENV = "SEGAUDIT_KERNEL"


def get_kernels(name: str | None = None) -> ModuleType:
    """Return the kernel module: ``"numba"`` (default) or ``"numpy"``.

    Parameters
    ----------
    name : {"numba", "numpy"}, optional
        Defaults to the environment variable ``SEGAUDIT_KERNEL``, else ``"numba"``.
    """
    choice = (name or os.environ.get(KERNEL_ENV) or "numba").lower()
    if choice == "numba":
        from segaudit.kernels import _numba

        return _numba
    if choice == "numpy":
        from segaudit.kernels import _numpy

        return _numpy
    raise ValueError(
        f"The {KERNEL_ENV!r} setting must be 'numba' or 'numpy'. Got {choice!r} instead."
    )


@contextlib.contextmanager
def use_threads(n_jobs: int | None) -> Iterator[int]:
    """Run the compiled kernels on `n_jobs` threads (None or -1: all cores)."""
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    wanted = limit if n_jobs is None or n_jobs == -1 else max(1, min(int(n_jobs), limit))
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)
