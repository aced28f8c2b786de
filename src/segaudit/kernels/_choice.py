"""Choose the compiled kernels or their numpy twins, at call time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from segaudit._validation import param_error
from segaudit.kernels._protocol import Kernels

__all__ = ["KERNEL_ENV", "get_kernels", "use_threads"]

KERNEL_ENV = "SEGAUDIT_KERNEL"


def get_kernels(name: str | None = None) -> Kernels:
    """Return the kernel module: ``"numba"`` (default) or ``"numpy"``.

    Parameters
    ----------
    name : {"numba", "numpy"}, optional
        Defaults to the environment variable ``SEGAUDIT_KERNEL``, else ``"numba"``.

    Returns
    -------
    Kernels
        :mod:`segaudit.kernels._numba` or :mod:`segaudit.kernels._numpy`.

    Examples
    --------
    >>> get_kernels("NumPy").__name__
    'segaudit.kernels._numpy'
    >>> get_kernels("cuda")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: The 'SEGAUDIT_KERNEL' parameter ... must be 'numba' or 'numpy'. Got 'cuda' instead.
    """
    choice = (name or os.environ.get(KERNEL_ENV) or "numba").lower()
    if choice == "numba":
        from segaudit.kernels import _numba

        return _numba
    if choice == "numpy":
        from segaudit.kernels import _numpy

        return _numpy
    raise param_error(KERNEL_ENV, "the environment", "'numba' or 'numpy'", repr(choice))


@contextlib.contextmanager
def use_threads(n_jobs: int | None) -> Iterator[int]:
    """Run the compiled kernels on `n_jobs` threads (None or -1: all cores)."""
    import numba

    config: Any = numba.config  # its settings are set at run time, unknown to mypy
    limit = int(config.NUMBA_NUM_THREADS)
    wanted = limit if n_jobs is None or n_jobs == -1 else max(1, min(int(n_jobs), limit))
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)
