"""Progress bars, only where the API promises them."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProgressBar", "progress"]


class ProgressBar(Protocol):
    """What the drivers use of a tqdm bar: a context manager that counts images."""

    def update(self, n: int = 1, /) -> object: ...

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> object: ...


def progress(total: int, desc: str, verbose: bool) -> ProgressBar:
    """Return a tqdm bar over `total` images, silent unless `verbose`.

    Examples
    --------
    >>> with progress(3, "reading", verbose=False) as bar:
    ...     _ = bar.update(3)
    """
    if not verbose:  # tqdm takes a tenth of a second to import
        return _Silent()
    from tqdm.auto import tqdm

    bar: ProgressBar = tqdm(total=total, desc=desc, unit="img", leave=False)
    return bar


class _Silent:
    """A progress bar that shows nothing (``verbose=False``)."""

    def update(self, n: int = 1, /) -> None:
        """Count nothing."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
