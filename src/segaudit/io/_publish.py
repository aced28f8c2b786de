"""The scan's output folder: owned by the tool, locked while written, switched in one rename.

Layout of ``OUT`` (only these names are ever written; other files are left alone)::

    OUT/images.csv    -> .segaudit/current/images.csv     (likewise regions.csv,
    OUT/masks         -> .segaudit/current/masks           confusions.csv, per_class.csv,
    OUT/report.html   -> .segaudit/current/report.html     summary.json, exports, report.html)
    OUT/.segaudit/lock                 fcntl lock; holds the writer's pid
    OUT/.segaudit/current -> runs/ID   the visible run, swapped with one os.replace
    OUT/.segaudit/runs/ID/             a complete run and its manifest.json
    OUT/.segaudit/stage-ID/, spill-ID/ a run being written, and its temporary files

``segaudit evaluate`` publishes its own names (``comparison.csv``, ``errors.csv``,
``precision_recall.png``) the same way; a folder holds one command's results.

A run is written to ``stage-ID``, its ``manifest.json`` (run id, every file and
its sha256) is written last, the folder is renamed to ``runs/ID``, and then
``current`` is replaced, so every visible name switches to the new run at once.
Under the lock, each run removes what killed runs left (``stage-*``, ``spill-*``,
earlier runs, found by name or by their manifest) and the run it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from segaudit._validation import param_error

__all__ = ["PUBLISHED", "OutputBusyError", "OutputFolder", "check_out_dir", "read_manifest"]

PathLike = str | os.PathLike[str]
TOOL = ".segaudit"
MANIFEST = "manifest.json"
PUBLISHED = (
    "images.csv",
    "regions.csv",
    "confusions.csv",
    "per_class.csv",
    "summary.json",
    "masks",
    "exports",
    "report.html",
)
"""The names visible in ``OUT``, each a link through ``.segaudit/current``."""
_STALE = re.compile(r"(stage|spill)-[0-9T]+-\d+-[0-9a-f]+|current\.[0-9a-f]+\.tmp")
_LEGACY = re.compile(r"\.segaudit-[a-z0-9_]{8}")  # staging folders of segaudit <= 0.x


class OutputBusyError(RuntimeError):
    """Another process holds the lock on the output folder."""


def _link_target(name: str) -> str:
    return f"{TOOL}/current/{name}"


def _inside(child: str, parent: str) -> bool:
    return os.path.commonpath([child, parent]) == parent


def check_out_dir(
    out_dir: PathLike,
    inputs: Mapping[str, PathLike | None],
    func: str,
    *,
    names: tuple[str, ...] = PUBLISHED,
) -> None:
    """Refuse an output folder that would overwrite inputs or files the tool did not write.

    Parameters
    ----------
    out_dir : str or PathLike
        The output folder; it need not exist.
    inputs : mapping of str to path or None
        Input folders by name (``"masks"``, ...); None entries are ignored.
    func : str
        The caller, for the message.
    names : tuple of str, default=PUBLISHED
        The visible names the caller publishes (``segaudit evaluate`` has its own).

    Raises
    ------
    ValueError
        If `out_dir` is a file, is, contains or lies inside an input folder
        (symlinks resolved), holds one of `names` that is not the tool's link, or
        holds the results of another segaudit command (links to other names).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise param_error("out_dir", func, "a folder", f"the file '{out}'")
    real = os.path.realpath(out)
    for name, folder in inputs.items():
        if folder is None:
            continue
        other = os.path.realpath(folder)
        relation = (
            "is"
            if real == other
            else "lies inside"
            if _inside(real, other)
            else "contains"
            if _inside(other, real)
            else None
        )
        if relation is not None:
            raise param_error(
                "out_dir",
                func,
                "a folder apart from the input folders (the scan owns it)",
                f"'{out}', which {relation} the {name} folder '{folder}'",
            )
    for name in names:
        entry = out / name
        if os.path.lexists(entry) and not _is_our_link(entry, name):
            raise param_error(
                "out_dir",
                func,
                "a folder whose results segaudit wrote (or a new one)",
                f"'{out}', where '{entry}' was not written by segaudit; move it away",
            )
    foreign = _other_links(out, names)
    if foreign:
        raise param_error(
            "out_dir",
            func,
            "a new folder or one this command wrote",
            f"'{out}', which holds results of another segaudit command ('{foreign[0]}')",
        )


def _other_links(out: Path, names: tuple[str, ...]) -> list[str]:
    """Names in `out` that link through ``.segaudit/current`` but are not among `names`."""
    if not out.is_dir():
        return []
    return sorted(
        entry.name
        for entry in out.iterdir()
        if entry.name not in names and _is_our_link(entry, entry.name)
    )


def _is_our_link(entry: Path, name: str) -> bool:
    return entry.is_symlink() and os.readlink(entry) == _link_target(name)


def read_manifest(run_dir: PathLike) -> dict[str, Any]:
    """Return the manifest of a published run: ``run_id``, ``version`` and ``files``.

    ``files`` maps each file's path inside the run (``masks/x.png``) to its sha256.
    """
    with open(Path(run_dir) / MANIFEST, encoding="utf-8") as fh:
        manifest: dict[str, Any] = json.load(fh)
    return manifest


HASH_THREADS = 2
"""Threads hashing the run's files for the manifest (hashlib releases the GIL)."""


def _hashes(paths: list[Path]) -> list[str]:
    """Return the sha256 of each file, in order, `HASH_THREADS` files at a time."""
    if len(paths) < 2:
        return [_sha256(path) for path in paths]
    with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="segaudit-hash") as pool:
        return list(pool.map(_sha256, paths))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class OutputFolder:
    """Lock ``OUT``, give a staging and a spill folder, publish the staged run at once.

    Parameters
    ----------
    out_dir : str or PathLike
        Created if needed (with its parents). Checked by `check_out_dir` first.
    version : str
        Recorded in the manifest.
    names : tuple of str, default=PUBLISHED
        The visible names: each becomes a link through ``.segaudit/current``.

    Raises
    ------
    OutputBusyError
        On entry, if another process is writing to `out_dir`.
    OSError
        On entry, if `out_dir` cannot be created or written.

    Notes
    -----
    On leaving with an exception, everything this run wrote is removed; the
    previous run stays visible. Folders created for a run that never published
    are removed again.
    """

    def __init__(
        self, out_dir: PathLike, *, version: str, names: tuple[str, ...] = PUBLISHED
    ) -> None:
        self.out = Path(out_dir)
        self.names = names
        self.tool = self.out / TOOL
        self.version = version
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.run_id = f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        self.stage = self.tool / f"stage-{self.run_id}"
        self.spill = self.tool / f"spill-{self.run_id}"
        self.run_dir = self.tool / "runs" / self.run_id
        self._fd: int | None = None
        self._created: list[Path] = []

    # -- entering: create, lock, clean ------------------------------------------------
    def __enter__(self) -> OutputFolder:
        try:
            self._mkdir(self.out)
            self._mkdir(self.tool)
            self._fd = self._lock()
            self._remove_stale()
            self._mkdir(self.tool / "runs")
            self.stage.mkdir()
            for sub in ("masks", "exports"):  # folders are published even when empty
                if sub in self.names:
                    (self.stage / sub).mkdir()
            self.spill.mkdir()
        except BaseException:
            self._abandon()
            raise
        return self

    def _mkdir(self, path: Path) -> None:
        missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
        path.mkdir(parents=True, exist_ok=True)
        self._created.extend(reversed(missing))  # outermost first

    def _lock(self) -> int:
        path = self.tool / "lock"
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise OutputBusyError(
                    f"another segaudit scan is writing to {self.out} (pid {holder}); "
                    "wait for it to finish or choose another --out."
                ) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:  # the holder removed it on leaving: lock the new one
                same = False
                self._mkdir(self.tool)
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            os.close(fd)
        raise OutputBusyError(f"cannot lock {path}: it keeps being replaced.")

    def _remove_stale(self) -> None:
        """Remove what killed runs left; only names this module makes, only under the lock."""
        for entry in self.tool.iterdir():
            if _STALE.fullmatch(entry.name):
                _remove(entry)
        for entry in self.out.iterdir():
            if _LEGACY.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
        self._remove_old_runs()

    def _current(self) -> str | None:
        try:
            return os.path.basename(os.readlink(self.tool / "current"))
        except OSError:
            return None

    def _remove_old_runs(self) -> None:
        runs = self.tool / "runs"
        if not runs.is_dir():
            return
        current = self._current()
        for entry in runs.iterdir():
            if entry.name != current and entry.is_dir() and not entry.is_symlink():
                _remove_run(entry)

    # -- publishing ------------------------------------------------------------------
    def publish(self) -> list[Path]:
        """Record the staged files in the manifest and make them the visible run.

        Returns
        -------
        list of Path
            The visible paths (``OUT/images.csv``, ``OUT/masks/x.png``, ...),
            ``report.html`` last.
        """
        files = sorted(
            p.relative_to(self.stage).as_posix() for p in self.stage.rglob("*") if p.is_file()
        )
        manifest = {
            "segaudit_manifest": 1,
            "run_id": self.run_id,
            "version": self.version,
            "files": dict(zip(files, _hashes([self.stage / rel for rel in files]), strict=True)),
        }
        from segaudit.io._atomic import atomic_write

        with atomic_write(self.stage / MANIFEST) as fh:
            json.dump(manifest, fh, indent=1)
        _fsync_dir(self.stage)
        os.rename(self.stage, self.run_dir)
        _fsync_dir(self.run_dir.parent)
        for name in self.names:
            entry = self.out / name
            if not os.path.lexists(entry):
                os.symlink(_link_target(name), entry)  # never replaces: a new file stops us
            elif not _is_our_link(entry, name):
                raise FileExistsError(
                    errno.EEXIST, "a file not written by segaudit appeared here", str(entry)
                )
        link = self.tool / f"current.{secrets.token_hex(4)}.tmp"
        os.symlink(f"runs/{self.run_id}", link)
        try:
            os.replace(link, self.tool / "current")
        except BaseException:
            _remove(link)
            raise
        _fsync_dir(self.tool)
        self._created.clear()  # published: the folders are the user's results now
        self._remove_old_runs()
        visible = [self.out / rel for rel in files]
        visible.sort(key=lambda p: p.name == "report.html")
        return visible

    # -- leaving ---------------------------------------------------------------------
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._abandon()

    def _abandon(self) -> None:
        """Remove this run's staging and spill (and an unpublished run), then unlock."""
        _remove(self.stage)
        _remove(self.spill)
        if self._fd is None:  # not locked: the rest may belong to another scan
            return
        current = self._current()
        if current != self.run_id and self.run_dir.is_dir():
            _remove_run(self.run_dir)
        if current is None:  # links made by a publish that failed before its switch
            for name in self.names:
                if _is_our_link(self.out / name, name):
                    (self.out / name).unlink()
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        if self.tool in self._created:  # nothing was ever published here: leave no trace
            with contextlib.suppress(OSError):
                (self.tool / "lock").unlink()
        if self._created:
            for path in reversed(self._created):
                with contextlib.suppress(OSError):
                    path.rmdir()
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _remove_run(run_dir: Path) -> None:
    """Delete a run's files listed in its manifest, then its folders if they are empty.

    Files the manifest does not list (a user's) stay, and so do their folders.
    """
    try:
        listed: Iterable[str] = read_manifest(run_dir)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        listed = ()  # no manifest (or a removal was killed after it): remove empty folders only
    for rel in listed:
        path = run_dir / rel
        if path.resolve().is_relative_to(run_dir.resolve()):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
    (run_dir / MANIFEST).unlink(missing_ok=True)
    for folder in sorted((p for p in run_dir.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        run_dir.rmdir()
