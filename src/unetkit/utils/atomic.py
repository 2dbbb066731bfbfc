"""Atomic writes: build the new version beside the target, then swap it in.

A crash or an exception never leaves a truncated or half-written file, and never clobbers the
previous version: the new content goes to a hidden temporary sibling (``.NAME.<random>.tmp``,
same folder, so the final rename stays on one file system) that is moved over the target with
:func:`os.replace` only once it is complete, and deleted otherwise.

* :func:`atomic_target` yields the temporary path for any writer (tifffile, h5py, zarr...); it
  also handles directories (Zarr stores), which cannot be replaced atomically: the old one is
  renamed aside first and restored if the move fails.
* :func:`atomic_write` / :func:`atomic_write_text` write a file through a file handle and
  ``fsync`` it before the rename, so the new version is on disk once they return.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# A new binary file, never an existing one or the target of a link.
_NEW_FILE_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
)


def _temp_sibling(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete temporary siblings left in ``folder`` by writes of a killed process; returns how many.

    Only call it when no other process writes into ``folder``.
    """
    removed = 0
    for stale in Path(folder).glob(".*.tmp"):
        _remove(stale)
        removed += 1
    return removed


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success move it onto ``target``, on failure delete it.

    Files are swapped in with :func:`os.replace` (atomic). Directories (Zarr stores) cannot be
    replaced atomically; the old one is renamed aside first and restored if the move fails.
    The parent folder must exist.
    """
    tmp = _temp_sibling(target)
    try:
        yield tmp
        if tmp.is_dir() and target.exists():
            backup = _temp_sibling(target)
            os.replace(target, backup)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(backup, target)
                raise
            _remove(backup)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, fsync, then rename over ``path``.

    Parent folders are created. The file gets the usual permissions of a new file (0o666
    masked by the umask), so run folders can be shared like any other output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        fd = os.open(tmp, _NEW_FILE_FLAGS, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file (UTF-8)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
