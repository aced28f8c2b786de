"""Read ahead in background threads: the next files load while the current ones compute.

File reads and decoding (``np.load``, zlib, Pillow) release the GIL, so reader
threads overlap them with the engine's work on the previous items. At most
`depth` items are loaded ahead of the consumer, so memory stays bounded.
:func:`ahead` does the same for any iterator (e.g. the compiled kernels behind
``LabelAudit.iter_images``, which release the GIL too).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, cast

__all__ = ["THREAD_PREFIX", "ahead", "prefetch"]

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

    def fill() -> None:  # the window: at most `depth` loads not yet taken
        if len(pending) >= depth:
            return
        for key in todo:
            pending.append(pool.submit(load, key))
            if len(pending) >= depth:
                return

    try:
        fill()
        while pending:
            result = pending.popleft().result()  # a load's error is raised here, in order
            fill()  # the next keys load while the consumer works on this result
            yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


_DONE = object()
"""Put by `ahead`'s thread after the last item (or with an error)."""


def ahead(items: Iterable[R], *, depth: int = 2) -> Generator[R, None, None]:
    """Yield the items of `items`, in order, taken from it up to `depth` items ahead in a thread.

    One thread iterates `items`; at most `depth` items wait for the consumer
    besides the one it holds. An exception of the iteration is raised here
    after the items before it. Closing the generator early stops the thread
    (the iteration is closed in that thread) before returning.

    Examples
    --------
    >>> list(ahead((k * k for k in range(5)), depth=2))
    [0, 1, 4, 9, 16]
    """
    if depth < 1:
        raise ValueError(f"ahead: 'depth' must be >= 1; got depth={depth}.")
    box: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    break
            else:
                put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=f"{THREAD_PREFIX}-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = box.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield cast("R", item)
    finally:
        stop.set()
        thread.join()
