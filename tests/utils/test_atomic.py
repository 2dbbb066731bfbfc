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


def test_stale_temporaries_of_one_target(tmp_path: Path) -> None:
    """A killed write leaves ``.NAME.<hex>.tmp``; the next write of NAME removes it, others' stay.
    A previous version moved aside (``.bak.tmp``) is put back when the target is missing."""
    from unetkit.utils.atomic import remove_stale_temporaries

    (tmp_path / ".a.zarr.0123456789ab.tmp").mkdir()
    (tmp_path / ".b.zarr.0123456789ab.tmp").mkdir()
    (tmp_path / ".c.zarr.0123456789ab.bak.tmp").mkdir()
    (tmp_path / ".c.zarr.0123456789ab.bak.tmp" / "old").write_text("1")
    with atomic_target(tmp_path / "a.zarr") as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.zarr.0123456789ab.tmp", ".c.zarr.0123456789ab.bak.tmp",
                                                          "a.zarr"]
    assert remove_stale_temporaries(tmp_path, "c.zarr") == 0  # restored, not removed
    assert (tmp_path / "c.zarr" / "old").read_text() == "1"


def test_errors_name_the_target_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.tif"
    with pytest.raises(PermissionError) as err, atomic_target(target) as tmp:
        raise PermissionError(13, "Permission denied", str(tmp))
    assert err.value.filename == str(target)
    with pytest.raises(OSError, match=r"out\.tif'") as err2, atomic_target(target) as tmp:
        raise OSError(f"Unable to create file (name = '{tmp}')")  # h5py's style: the name inside the message
    assert ".tmp" not in str(err2.value)
    assert list(tmp_path.iterdir()) == []
