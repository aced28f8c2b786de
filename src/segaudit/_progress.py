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
    from tqdm.auto import tqdm

    bar: ProgressBar = tqdm(total=total, desc=desc, unit="img", disable=not verbose, leave=False)
    return bar
