"""Progress bars, only where the API promises them."""

from __future__ import annotations

from typing import Any

__all__ = ["progress"]


def progress(total: int, desc: str, verbose: bool) -> Any:
    """Return a tqdm bar over `total` images, silent unless `verbose`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not verbose, leave=False)
