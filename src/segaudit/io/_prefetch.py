"""Read ahead in background threads: the next files load while the current ones compute.

File reads and decoding (``np.load``, zlib, Pillow) release the GIL, so reader
threads overlap them with the engine's work on the previous items. At most
`depth` items are loaded ahead of the consumer, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["THREAD_PREFIX", "prefetch"]

K = TypeVar("K")
R = TypeVar("R")

THREAD_PREFIX = "segaudit-prefetch"
"""Names of the reader threads begin with this."""


def prefetch(
    load: Callable[[K], R], keys: Iterable[K], *, depth: int = 2, workers: int = 1
) -> Generator[R, None, None]:
    """Yield ``load(key)`` for each key, in order, computed up to `depth` keys ahead.

    `workers` threads call `load`, for at most `depth` keys whose results the
    consumer has not taken yet (loaded or being loaded), so at most `depth`
    results are held besides the consumer's own. An exception of `load` is
    raised here, in the consumer, at that key's place (the results before it
    are yielded first), and no later key is handed out. Closing the iterator
    early (``break``, an error in the consumer) cancels the keys not started
    and waits for those being loaded.

    Examples
    --------
    >>> list(prefetch(lambda k: k * k, range(5), depth=3, workers=2))
    [0, 1, 4, 9, 16]
    """
    if depth < 1 or workers < 1:
        raise ValueError(
            f"prefetch: 'depth' and 'workers' must be >= 1; got depth={depth}, workers={workers}."
        )
    pool = ThreadPoolExecutor(max_workers=min(workers, depth), thread_name_prefix=THREAD_PREFIX)
    pending: deque[Future[R]] = deque()
    todo = iter(keys)
    try:
        while True:
            for key in todo:  # fill the window: at most `depth` loads not yet taken
                pending.append(pool.submit(load, key))
                if len(pending) >= depth:
                    break
            if not pending:
                return
            yield pending.popleft().result()  # a load's error is raised here, in order
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
