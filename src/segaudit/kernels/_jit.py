"""``njit`` for the compiled kernels, with a cache folder that works on read-only installs.

Compiled code is cached on disk where numba can (a ``__pycache__`` next to the
kernels, ``NUMBA_CACHE_DIR`` or the user's cache folder). When none of them
is writable (a read-only install with an unwritable home), numba would refuse
to define the kernels at all; instead they are cached in a private folder of
the temporary directory (``segaudit-numba-cache-<uid>``), or, failing that,
compiled in every new process; a one-line ``logging`` warning of the
``segaudit`` logger says which. The choice is made once, when this module is
imported, before any kernel is defined.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import numba

__all__ = ["CACHE", "CACHE_DIR", "FALLBACK_CACHE_PREFIX", "njit"]

FALLBACK_CACHE_PREFIX = "segaudit-numba-cache-"

_log = logging.getLogger("segaudit")
_F = TypeVar("_F", bound=Callable[..., object])


def _probe() -> None:
    """Do nothing: numba is asked whether it could cache a function of this folder."""


def _numba_can_cache() -> bool:
    """Tell whether numba finds a writable cache location for this folder's functions.

    The kernels live next to this file, so numba's answer for `_probe` is its
    answer for them.
    """
    try:
        numba.njit(cache=True)(_probe)
    except RuntimeError:  # "cannot cache function ...: no locator available for file ..."
        return False
    return True


@contextlib.contextmanager
def _cache_dir(folder: str | None) -> Iterator[None]:
    """Point numba's cache folder at `folder` while kernels are defined (None: as is).

    numba fixes a function's cache location when it is decorated, so the
    setting is restored afterwards and other numba users are not affected.
    """
    if folder is None:
        yield
        return
    config: Any = numba.config  # its settings are set at run time, unknown to mypy
    before = config.CACHE_DIR
    config.CACHE_DIR = folder
    try:
        yield
    finally:
        config.CACHE_DIR = before


def _private_temp_folder() -> str | None:
    """Return ``<tempdir>/segaudit-numba-cache-<uid>`` if it is ours and writable, else None.

    Compiled code is loaded from this folder, so one that another user could
    have prepared (not owned by us, writable by others, or a symbolic link) is
    never used.
    """
    owner = os.getuid() if hasattr(os, "getuid") else None
    name = FALLBACK_CACHE_PREFIX + (str(owner) if owner is not None else "user")
    try:
        folder = os.path.join(tempfile.gettempdir(), name)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            return None
        if owner is not None and (info.st_uid != owner or info.st_mode & 0o022):
            return None
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return None
    return folder


def _cache_setting() -> tuple[bool, str | None]:
    """Decide, once, whether the kernels are cached and in which folder (None: numba's)."""
    if _numba_can_cache():
        return True, None
    folder = _private_temp_folder()
    if folder is not None:
        with _cache_dir(folder):
            if _numba_can_cache():
                _log.warning(
                    "segaudit: numba cannot cache compiled kernels next to the package, in "
                    "NUMBA_CACHE_DIR or in the user cache folder; caching them in %s instead "
                    "(set NUMBA_CACHE_DIR to a writable folder to choose).",
                    folder,
                )
                return True, folder
    _log.warning(
        "segaudit: no writable folder to cache compiled kernels in (package folder, "
        "NUMBA_CACHE_DIR, user cache, temporary folder); they are compiled again in every "
        "new process that runs them (by default the numpy kernels serve instead: identical "
        "results, slower); set NUMBA_CACHE_DIR to a writable folder to avoid that."
    )
    return False, None


CACHE, CACHE_DIR = _cache_setting()
"""Whether the kernels are cached on disk, and the fallback folder if numba's own failed."""


def njit(*, parallel: bool = False) -> Callable[[_F], _F]:
    """``numba.njit`` (nogil) with the cache setting decided above.

    The compiled dispatcher is called exactly like the Python function it
    wraps (same parameters; numba returns plain ints, floats and arrays), so it
    keeps that function's type for the type checker.
    """

    def wrap(func: _F) -> _F:
        with _cache_dir(CACHE_DIR):
            return cast("_F", numba.njit(parallel=parallel, nogil=True, cache=CACHE)(func))

    return wrap
