"""Atomic writes: permissions of a normal new file, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from unetkit.utils.atomic import atomic_target, atomic_write_text


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_directory_target_is_swapped_and_restored_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]
    with atomic_target(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"partial")
    (tmp_path / ".store.zarr.def456.tmp").mkdir()
    (tmp_path / "last.pt").write_bytes(b"complete")
    from unetkit.utils.atomic import remove_stale_temporaries

    assert remove_stale_temporaries(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
