"""Read ahead in background threads: the next files load while the current ones compute.

File reads and decoding (``np.load``, zlib, Pillow) release the GIL, so reader
threads overlap them with the engine's work on the previous items. At most
`depth` items are loaded ahead of the consumer, so memory stays bounded.
:class:`Prefetch` starts loading at once, before the first item is asked for
(the report's pictures, drawn while its tables are made). :func:`ahead` does
the same for any iterator (e.g. the compiled kernels behind
``LabelAudit.iter_images``, which release the GIL too).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

__all__ = ["THREAD_PREFIX", "Prefetch", "ahead", "prefetch"]

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
    and waits for those being loaded. Nothing starts before the first item is
    asked for; `Prefetch` starts at once.

    Examples
    --------
    >>> list(prefetch(lambda k: k * k, range(5), depth=3, workers=2))
    [0, 1, 4, 9, 16]
    """
    _check(depth, workers, "prefetch")
    with Prefetch(load, keys, depth=depth, workers=workers) as items:
        yield from items


def _check(depth: int, workers: int, func: str) -> None:
    if depth < 1 or workers < 1:
        raise ValueError(
            f"{func}: 'depth' and 'workers' must be >= 1; got depth={depth}, workers={workers}."
        )


class Prefetch(Iterator[R]):
    """`prefetch`'s iterator, started now: the first `depth` keys load before the first `next`.

    For results wanted later (e.g. pictures drawn while other work goes on).
    The same order, bound and errors as `prefetch`; `close` (or leaving the
    ``with`` block) cancels the keys not started and waits for those being
    loaded, whether or not the iteration began.

    Examples
    --------
    >>> with Prefetch(lambda k: k + 1, range(3), depth=2) as items:
    ...     list(items)
    [1, 2, 3]
    """

    def __init__(
        self, load: Callable[[K], R], keys: Iterable[K], *, depth: int = 2, workers: int = 1
    ) -> None:
        _check(depth, workers, "Prefetch")
        self._load: Callable[[Any], R] = load
        self._depth = depth
        self._todo: Iterator[Any] = iter(keys)
        self._pending: deque[Future[R]] = deque()
        self._pool = ThreadPoolExecutor(
            max_workers=min(workers, depth), thread_name_prefix=THREAD_PREFIX
        )
        try:
            self._fill()
        except BaseException:
            self.close()
            raise

    def _fill(self) -> None:  # the window: at most `depth` loads not yet taken
        if len(self._pending) >= self._depth:
            return
        for key in self._todo:
            self._pending.append(self._pool.submit(self._load, key))
            if len(self._pending) >= self._depth:
                return

    def __next__(self) -> R:
        if not self._pending:
            self.close()
            raise StopIteration
        try:
            result = self._pending.popleft().result()  # a load's error is raised here, in order
            self._fill()  # the next keys load while the consumer works on this result
        except BaseException:
            self.close()
            raise
        return result

    def close(self) -> None:
        """Cancel the keys not started; wait for those being loaded. Idempotent."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._todo = iter(())
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetch[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
