"""Atomic file output: a crash never leaves a half-written file that looks complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from segaudit._validation import param_error

__all__ = ["atomic_path", "atomic_write"]


def _umask() -> int:
    """Return the process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success.

    Parameters
    ----------
    path : str or PathLike
        Final destination. Its parent folder must exist.
    suffix : str, optional
        Suffix of the temporary name (some writers, e.g. ``np.save``, append one
        when it is missing). Defaults to the destination's own suffix.

    Yields
    ------
    Path
        Where to write. On an exception the temporary file is removed and the
        destination is left untouched.
    """
    final = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=final.parent,
        prefix=f".{final.name}.",
        suffix=(final.suffix if suffix is None else suffix) + ".part",
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; finished files get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["w"] = "w", *, encoding: str | None = "utf-8"
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["wb"], *, encoding: str | None = "utf-8"
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8"
) -> contextlib.AbstractContextManager[IO[Any]]:
    """Open a temporary file for writing and move it onto `path` when the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        Final destination.
    mode : {"w", "wb"}, default="w"
        Text or binary.
    encoding : str, optional, default="utf-8"
        Text encoding; ignored in binary mode.

    Returns
    -------
    context manager of a file object
        Write to it; it is flushed and synced before the rename.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(path) as fh:
    ...     _ = fh.write("done")
    >>> path.read_text()
    'done'
    """
    if mode not in ("w", "wb"):
        raise param_error("mode", "atomic_write", "'w' or 'wb'", repr(mode))
    return _atomic_open(path, mode, None if "b" in mode else encoding)


@contextlib.contextmanager
def _atomic_open(
    path: str | os.PathLike[str], mode: str, encoding: str | None
) -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
