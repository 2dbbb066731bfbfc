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

A process that is killed (SIGKILL, power loss) cannot clean up: its temporaries stay behind.
:func:`atomic_target` removes those of the same target before it starts (so repeating a killed
command cleans up after it), and an error while writing names the target, not the temporary.
"""

from __future__ import annotations

import os
import re
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


def temporary_sibling(target: str | Path, *, backup: bool = False) -> Path:
    """A new hidden name next to ``target``: ``.NAME.<12 hex digits>.tmp`` (``.bak.tmp`` for the
    previous version of a folder while it is being replaced)."""
    target = Path(target)
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{'.bak' if backup else ''}.tmp")


_temp_sibling = temporary_sibling  # the name used before it was public


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> int:
    """Delete temporaries left in ``folder`` by writes of a killed process; returns how many.

    With ``name``, only those of the target ``folder / name`` (``.NAME.<hex>.tmp``); without it,
    every hidden ``.*.tmp``. The previous version of a folder that a killed process had moved
    aside (``.NAME.<hex>.bak.tmp``) is moved back when ``NAME`` is missing, never deleted then.
    Only call it when no other process writes the same target(s).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    if name is None:
        candidates = list(folder.glob(".*.tmp"))
    else:
        pattern = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{12}}(\.bak)?\.tmp")
        candidates = [p for p in folder.iterdir() if pattern.fullmatch(p.name)]
    removed = 0
    for stale in sorted(candidates):
        backup = _BACKUP.fullmatch(stale.name)
        if backup is not None and not (original := stale.with_name(backup.group(1))).exists():
            os.replace(stale, original)  # killed between moving the old version aside and the new one in
            continue
        _remove(stale)
        removed += 1
    return removed


_BACKUP = re.compile(r"\.(.+)\.[0-9a-f]{12}\.bak\.tmp")


def _name_the_target(exc: OSError, tmp: Path, target: Path) -> OSError:
    """``exc`` with the temporary's name replaced by the target's (users never chose the temporary)."""
    if exc.filename is not None and tmp.name in str(exc.filename):
        new = type(exc)(exc.errno, exc.strerror, str(exc.filename).replace(tmp.name, target.name))
    elif tmp.name in str(exc):
        new = type(exc)(str(exc).replace(tmp.name, target.name))
    else:
        return exc
    new.__traceback__ = exc.__traceback__
    return new


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
    The parent folder must exist. Temporaries of the same target left by a killed process are
    removed first; an ``OSError`` names ``target`` where it named the temporary.
    """
    target = Path(target)
    remove_stale_temporaries(target.parent, target.name)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        if tmp.is_dir() and target.exists():
            backup = temporary_sibling(target, backup=True)
            os.replace(target, backup)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(backup, target)
                raise
            _remove(backup)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        named = _name_the_target(exc, tmp, target)
        if named is exc:
            raise
        raise named from None
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
