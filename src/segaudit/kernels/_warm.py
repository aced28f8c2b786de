"""Fill numba's disk cache off the critical path, and load compiled kernels from it.

:mod:`segaudit.kernels._auto` imports this module in its background thread
only (it imports numba). :func:`compile_in_child` runs
``python -m segaudit.kernels._warm KEYS`` (KEYS: a JSON list of
``[kernel name, argument specs]``, see :func:`segaudit.kernels._auto.arg_spec`);
the child compiles each signature into the cache, on a lower priority, one
child at a time per user (a lock file in the temporary folder), and exits 0,
or :data:`NO_CACHE` when no folder is writable for the cache. Then
:func:`load_cached` loads the compiled code in the parent without compiling.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numba
import numpy as np
from numba.core import types

from segaudit.kernels import _jit, _numba

__all__ = [
    "LOCK_PREFIX",
    "NO_CACHE",
    "compile_in_child",
    "load_cached",
    "main",
    "numba",
    "signature",
]

NO_CACHE = 3
"""The child's exit code when compiled code cannot be cached."""

LOCK_PREFIX = "segaudit-numba-warm-"
"""Name of the lock file (then the user id) that children take turns on."""

_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCALARS = {"b": types.boolean, "i": types.int64, "f": types.float64}


def cache_enabled() -> bool:
    """Tell whether compiled kernels are cached on disk in this process (see ``_jit``)."""
    return _jit.CACHE


def signature(specs: Sequence[Sequence[Any]]) -> tuple[types.Type, ...]:
    """Return the numba argument types that argument specs describe.

    Examples
    --------
    >>> signature([("a", "<f4", 3, "C", False), ("i",), ("s", "<i8")])
    (Array(float32, 3, 'C', True, aligned=True), int64, int64)
    """
    out: list[types.Type] = []
    for spec in specs:
        kind = spec[0]
        if kind == "a":
            _, dtype, ndim, layout, writeable = spec
            base = numba.from_dtype(np.dtype(dtype))
            out.append(types.Array(base, ndim, layout, readonly=not writeable))
        elif kind == "s":
            out.append(numba.from_dtype(np.dtype(spec[1])))
        else:
            out.append(_SCALARS[kind])
    return tuple(out)


def load_cached(
    name: str, specs: Sequence[Sequence[Any]], *, allow_compile: bool = False
) -> Callable[..., Any] | None:
    """Return kernel `name` of :mod:`segaudit.kernels._numba` ready for `specs`, or None.

    Loads the signature from numba's disk cache and never compiles it, unless
    `allow_compile` (used only when numba's cache API is not the expected one).
    """
    dispatcher: Any = getattr(_numba, name)
    sig = signature(specs)
    if sig in dispatcher.overloads:
        return dispatcher  # type: ignore[no-any-return]
    try:
        from numba.core.compiler_lock import global_compiler_lock

        with global_compiler_lock:
            if sig in dispatcher.overloads:
                return dispatcher  # type: ignore[no-any-return]
            cres = dispatcher._cache.load_overload(sig, dispatcher.targetctx)
            if cres is None:
                return None
            if not cres.objectmode:
                dispatcher.targetctx.insert_user_function(
                    cres.entry_point, cres.fndesc, [cres.library]
                )
            dispatcher.add_overload(cres)
    except (AttributeError, TypeError):  # another numba: its public compile() reads the cache
        if not allow_compile:
            return None
        dispatcher.compile(sig)
    return dispatcher  # type: ignore[no-any-return]


def compile_in_child(keys: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> tuple[int, str]:
    """Compile `keys` into the disk cache in a child process; return its exit code and why.

    The child's stderr is kept in an unnamed temporary file, so that it never
    blocks on a pipe, and the last line is returned when it fails.
    """
    if not sys.executable:
        return -1, "no Python executable to compile in"
    payload = json.dumps(
        [[name, [[_text(v) for v in spec] for spec in specs]] for name, specs in keys]
    )
    env = dict(os.environ)
    if os.path.basename(_SRC) not in ("site-packages", "dist-packages"):
        # a source folder, perhaps put on sys.path by the caller: the child imports this
        # copy of segaudit (an installed one is found anyway; its folder is not prepended,
        # which would put all of site-packages before the standard library)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", __name__, payload],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            return -1, f"cannot start {sys.executable}: {exc}"
        code = proc.wait()
        if code in (0, NO_CACHE):
            return code, ""
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return code, f"exit code {code}: {lines[-1] if lines else 'no message'}"


def _text(value: Any) -> Any:
    """JSON-ready form of one field of an argument spec (a dtype as its string)."""
    return value.str if isinstance(value, np.dtype) else value


@contextlib.contextmanager
def _turn() -> Iterator[None]:
    """Hold this user's warm-up lock file (no lock where none can be taken)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no turns
        yield
        return
    user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    path = os.path.join(tempfile.gettempdir(), LOCK_PREFIX + user + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def main(argv: Sequence[str] | None = None) -> int:
    """Compile the keys given as JSON into numba's disk cache (the child's entry point)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m segaudit.kernels._warm KEYS_JSON", file=sys.stderr)
        return 2
    keys = json.loads(args[0])
    if not _jit.CACHE:
        return NO_CACHE
    if argv is None and hasattr(os, "nice"):
        os.nice(10)  # background work: the user's own computing goes first
    with _turn():
        for name, specs in keys:
            getattr(_numba, name).compile(signature(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
