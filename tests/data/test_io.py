"""Tests for unetkit.data.io: formats, axes, keys, labels, atomic writes, folders."""

from __future__ import annotations

import ast
import pathlib

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from unetkit.data import io
from unetkit.data.io.folders import SkippedFilesWarning
from unetkit.errors import InputError, MissingFileError, UnetkitError

ZARR3 = int(zarr.__version__.split(".")[0]) >= 3


def canonical(array: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Reference reorder to canonical [C][Z]YX."""
    canon = "".join(a for a in "CZYX" if a in axes)
    return np.transpose(array, [axes.index(a) for a in canon]), canon


def sample(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == bool:
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def zarr_group(path: pathlib.Path, fmt: int = 2):
    kw = {"zarr_format": fmt} if ZARR3 else {}
    return zarr.open_group(str(path), mode="w", **kw)


def zarr_array(group, name, data):
    if ZARR3:
        group.create_array(name, data=data)
    else:
        group.create_dataset(name, data=data)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------

CASES = [
    ("YX", (7, 9), "uint8"),
    ("ZYX", (3, 7, 9), "float32"),
    ("CYX", (2, 7, 9), "uint16"),
    ("YXC", (7, 9, 3), "int32"),  # non-canonical input order
    ("CZYX", (2, 3, 5, 6), "float64"),
    ("ZCYX", (3, 2, 5, 6), "uint8"),  # ImageJ order on input
    ("XY", (5, 4), "int16"),
    ("ZYX", (1, 5, 6), "uint8"),  # singleton axis survives
    ("YX", (4, 5), "bool"),
]


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".h5", ".hdf5", ".zarr", ".ome.zarr"])
@pytest.mark.parametrize("axes,shape,dtype", CASES)
def test_round_trip(tmp_path, suffix, axes, shape, dtype):
    a = sample(shape, dtype)
    path = io.write_image(tmp_path / "sub" / f"img{suffix}", a, axes=axes)
    assert path == tmp_path / "sub" / f"img{suffix}"
    b, got_axes = io.read_image(path)
    ref, canon = canonical(a, axes)
    assert got_axes == canon
    assert b.dtype == a.dtype
    assert b.shape == ref.shape
    np.testing.assert_array_equal(b, ref)


@pytest.mark.parametrize("compression", [True, False])
@pytest.mark.parametrize("suffix", [".tif", ".h5", ".zarr", ".ome.zarr"])
def test_round_trip_uncompressed_and_compressed(tmp_path, suffix, compression):
    a = sample((2, 4, 5), "uint16")
    io.write_image(tmp_path / f"x{suffix}", a, axes="CYX", compression=compression)
    b, axes = io.read_image(tmp_path / f"x{suffix}")
    assert axes == "CYX"
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "axes,shape,dtype",
    [("YX", (6, 7), "uint8"), ("YX", (6, 7), "uint16"), ("YXC", (6, 7, 3), "uint8"),
     ("CYX", (4, 6, 7), "uint8")],
)
def test_png_round_trip(tmp_path, axes, shape, dtype):
    a = sample(shape, dtype)
    io.write_image(tmp_path / "x.png", a, axes=axes)
    b, got = io.read_image(tmp_path / "x.png")
    ref, canon = canonical(a, axes)
    assert got == canon and b.dtype == a.dtype
    np.testing.assert_array_equal(b, ref)


def test_png_refuses_volume_and_suggests_tiff(tmp_path):
    with pytest.raises(InputError, match=r"\.tif") as err:
        io.write_image(tmp_path / "v.png", np.zeros((3, 4, 5), np.uint8), axes="ZYX")
    assert "ZYX" in str(err.value)
    with pytest.raises(InputError, match="PNG"):
        io.write_image(tmp_path / "f.png", np.zeros((4, 5), np.float32), axes="YX")
    assert not (tmp_path / "v.png").exists()
    assert list(tmp_path.iterdir()) == []


def test_png_palette_and_16bit_read(tmp_path):
    idx = np.arange(20, dtype=np.uint8).reshape(4, 5)
    img = Image.fromarray(idx).convert("P")
    img.save(tmp_path / "p.png")
    b, axes = io.read_image(tmp_path / "p.png")
    assert axes == "YX" and b.dtype == np.uint8


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    fmt=st.sampled_from([".tif", ".zarr"]),
    axes=st.sampled_from(["YX", "XY", "ZYX", "CYX", "YXC", "CZYX", "ZCYX", "XYZ"]),
    dtype=st.sampled_from(
        ["uint8", "int8", "uint16", "int16", "uint32", "int32", "int64",
         "float16", "float32", "float64", "bool"]
    ),
)
def test_round_trip_hypothesis(tmp_path_factory, data, fmt, axes, dtype):
    shape = tuple(data.draw(st.integers(1, 4), label=f"len {a}") for a in axes)
    a = sample(shape, dtype, seed=data.draw(st.integers(0, 1000), label="seed"))
    path = tmp_path_factory.mktemp("hyp") / f"x{fmt}"
    io.write_image(path, a, axes=axes)
    b, got = io.read_image(path)
    ref, canon = canonical(a, axes)
    assert got == canon
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, ref)


# --------------------------------------------------------------------------------------------
# TIFF axes inference
# --------------------------------------------------------------------------------------------


def test_tiff_inference_without_metadata(tmp_path):
    vol = sample((3, 5, 6), "uint8")
    tifffile.imwrite(tmp_path / "v.tif", vol, photometric="minisblack")
    b, axes = io.read_image(tmp_path / "v.tif")
    assert axes == "ZYX"
    np.testing.assert_array_equal(b, vol)

    rgb = sample((5, 6, 3), "uint8")
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    b, axes = io.read_image(tmp_path / "rgb.tif")
    assert axes == "CYX"
    np.testing.assert_array_equal(b, np.moveaxis(rgb, -1, 0))


def test_tiff_imagej_file_from_other_tools(tmp_path):
    a = sample((4, 2, 5, 6), "uint16")  # ImageJ order ZCYX
    tifffile.imwrite(tmp_path / "ij.tif", a, imagej=True, metadata={"axes": "ZCYX"})
    b, axes = io.read_image(tmp_path / "ij.tif")
    assert axes == "CZYX"
    np.testing.assert_array_equal(b, a.transpose(1, 0, 2, 3))


def test_tiff_time_series_refused_with_hint(tmp_path):
    a = sample((3, 5, 6), "uint8")
    tifffile.imwrite(tmp_path / "t.tif", a, imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(InputError, match="time") as err:
        io.read_image(tmp_path / "t.tif")
    assert "ZYX" in str(err.value)
    b, axes = io.read_image(tmp_path / "t.tif", axes="ZYX")
    assert axes == "ZYX" and b.shape == (3, 5, 6)


def test_explicit_axes_override_and_reorder(tmp_path):
    a = sample((5, 6, 2), "float32")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["raw"] = a
    b, axes = io.read_image(tmp_path / "f.h5", axes="yxc")
    assert axes == "CYX"
    np.testing.assert_array_equal(b, np.moveaxis(a, -1, 0))


def test_given_axes_length_mismatch_names_both(tmp_path):
    io.write_image(tmp_path / "a.h5", np.zeros((3, 4, 5)), axes="ZYX")
    with pytest.raises(InputError) as err:
        io.read_image(tmp_path / "a.h5", axes="YX")
    msg = str(err.value)
    assert "'YX'" in msg and "2 letters" in msg and "3 dimensions" in msg and "(3, 4, 5)" in msg


def test_singleton_not_squeezed_silently(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["x"] = np.zeros((1, 4, 5))
    with pytest.raises(InputError, match="3 dimensions"):
        io.read_image(tmp_path / "s.h5", axes="YX")
    b, axes = io.read_image(tmp_path / "s.h5")
    assert axes == "ZYX" and b.shape == (1, 4, 5)


def test_cannot_infer_5d_without_axes(tmp_path):
    with h5py.File(tmp_path / "five.h5", "w") as f:
        f["x"] = np.zeros((1, 2, 3, 4, 5))
    with pytest.raises(InputError, match="axes="):
        io.read_image(tmp_path / "five.h5")
    b, axes = io.read_image(tmp_path / "five.h5", axes="TCZYX")
    assert axes == "CZYX" and b.shape == (2, 3, 4, 5)


# --------------------------------------------------------------------------------------------
# OME-Zarr
# --------------------------------------------------------------------------------------------


def test_ome_zarr_metadata_written(tmp_path):
    a = sample((2, 3, 4, 5), "uint16")
    io.write_image(tmp_path / "v.ome.zarr", a, axes="CZYX")
    g = zarr.open_group(str(tmp_path / "v.ome.zarr"), mode="r")
    ms = g.attrs["multiscales"]
    assert len(ms) == 1
    assert ms[0]["version"] == "0.4"
    assert ms[0]["axes"] == [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    assert [d["path"] for d in ms[0]["datasets"]] == ["0"]
    assert ms[0]["datasets"][0]["coordinateTransformations"][0]["type"] == "scale"
    np.testing.assert_array_equal(g["0"][...], a)
    assert (tmp_path / "v.ome.zarr" / ".zgroup").exists()  # Zarr format 2 (OME-Zarr 0.4)
    b, axes = io.read_image(tmp_path / "v.ome.zarr")
    assert axes == "CZYX"
    np.testing.assert_array_equal(b, a)


def _handwritten_ome(path: pathlib.Path, t: int) -> np.ndarray:
    level0 = sample((t, 2, 3, 8, 10), "uint8")
    g = zarr_group(path)
    zarr_array(g, "s0", level0)
    zarr_array(g, "s1", level0[..., ::2, ::2])
    g.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "t", "type": "time"},
                {"name": "c", "type": "channel"},
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [1] * 5}]},
                {"path": "s1",
                 "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1, 2, 2]}]},
            ],
        }
    ]
    return level0


def test_handwritten_ome_zarr_v04_tczyx_singleton_t(tmp_path):
    level0 = _handwritten_ome(tmp_path / "h.zarr", t=1)  # plain .zarr suffix, found by metadata
    b, axes = io.read_image(tmp_path / "h.zarr")
    assert axes == "CZYX"
    np.testing.assert_array_equal(b, level0[0])
    lazy, lazy_axes = io.open_array(tmp_path / "h.zarr")
    assert lazy_axes == "CZYX" and lazy.shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(lazy[1, ..., 2:5], level0[0, 1, ..., 2:5])
    np.testing.assert_array_equal(np.asarray(lazy), level0[0])


def test_ome_zarr_nonsingleton_t_refused(tmp_path):
    _handwritten_ome(tmp_path / "t.ome.zarr", t=2)
    with pytest.raises(InputError, match="time axis T has length 2"):
        io.read_image(tmp_path / "t.ome.zarr")


@pytest.mark.skipif(not ZARR3, reason="OME-Zarr 0.5 needs Zarr format 3")
def test_ome_zarr_v05_layout(tmp_path):
    a = sample((3, 6, 7), "float32")
    g = zarr_group(tmp_path / "v5.ome.zarr", fmt=3)
    zarr_array(g, "0", a)
    g.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {"axes": [{"name": "z", "type": "space"}, {"name": "y", "type": "space"},
                      {"name": "x", "type": "space"}],
             "datasets": [{"path": "0", "coordinateTransformations":
                           [{"type": "scale", "scale": [1, 1, 1]}]}]}
        ],
    }
    b, axes = io.read_image(tmp_path / "v5.ome.zarr")
    assert axes == "ZYX"
    np.testing.assert_array_equal(b, a)


def test_ome_zarr_unknown_axis_refused(tmp_path):
    g = zarr_group(tmp_path / "odd.ome.zarr")
    zarr_array(g, "0", np.zeros((2, 4, 5), np.uint8))
    g.attrs["multiscales"] = [
        {"axes": [{"name": "angle", "type": "angle"}, {"name": "y"}, {"name": "x"}],
         "datasets": [{"path": "0"}]}
    ]
    with pytest.raises(InputError, match="'angle'"):
        io.read_image(tmp_path / "odd.ome.zarr")


def test_ome_zarr_with_key_inside_existing_store(tmp_path):
    raw = sample((3, 4, 5), "uint8")
    io.write_image(tmp_path / "v.ome.zarr", raw, axes="ZYX")
    lab = sample((3, 4, 5), "uint16", seed=1)
    io.write_image(tmp_path / "v.ome.zarr:labels/cells", lab, axes="ZYX")
    b, axes = io.read_image(tmp_path / "v.ome.zarr:labels/cells")
    assert axes == "ZYX"
    np.testing.assert_array_equal(b, lab)
    np.testing.assert_array_equal(io.read_image(tmp_path / "v.ome.zarr")[0], raw)


# --------------------------------------------------------------------------------------------
# Locations and keys
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,path,key",
    [
        ("file.h5:raw/data", "file.h5", "raw/data"),
        ("vol.zarr:labels", "vol.zarr", "labels"),
        ("vol.ome.zarr:labels/0", "vol.ome.zarr", "labels/0"),
        ("some/dir/a.tif", "some/dir/a.tif", None),
        ("x.HDF5:/raw", "x.HDF5", "/raw"),
        ("x.hdf:a:b", "x.hdf", "a:b"),
        ("f.h5:", "f.h5", None),
        ("C:\\x.tif", "C:\\x.tif", None),
        ("C:\\data\\f.h5", "C:\\data\\f.h5", None),
        ("C:\\data\\f.h5:raw", "C:\\data\\f.h5", "raw"),
        ("D:/data/v.zarr:seg", "D:/data/v.zarr", "seg"),
        ("weird:name.tif", "weird:name.tif", None),
    ],
)
def test_parse_location(text, path, key):
    assert io.parse_location(text) == (pathlib.Path(path), key)


def test_parse_location_accepts_pathlike():
    assert io.parse_location(pathlib.Path("a/b.h5:k")) == (pathlib.Path("a/b.h5"), "k")


def test_hdf5_single_dataset_auto_pick(tmp_path):
    a = sample((3, 4, 5), "int16")
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f.create_dataset("deep/inside/volume", data=a)
    b, axes = io.read_image(tmp_path / "one.h5")
    assert axes == "ZYX"
    np.testing.assert_array_equal(b, a)


def test_hdf5_missing_key_lists_available(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["raw"] = np.zeros((4, 5))
        f["seg/cells"] = np.zeros((4, 5), np.uint16)
    with pytest.raises(MissingFileError) as err:
        io.read_image(tmp_path / "two.h5:nope")
    msg = str(err.value)
    assert "'nope'" in msg and "'raw'" in msg and "'seg/cells'" in msg
    with pytest.raises(MissingFileError, match="2 datasets") as err:
        io.read_image(tmp_path / "two.h5")
    assert "'seg/cells'" in str(err.value)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, UnetkitError)
    b, _ = io.read_image(tmp_path / "two.h5", key="seg/cells")
    assert b.dtype == np.uint16


def test_conflicting_keys_refused(tmp_path):
    with pytest.raises(InputError, match="two different keys"):
        io.read_image(tmp_path / "x.h5:a", key="b")


def test_zarr_missing_key_lists_available(tmp_path):
    io.write_image(tmp_path / "s.zarr:raw", np.zeros((4, 5)), axes="YX")
    io.write_image(tmp_path / "s.zarr:labels", np.zeros((4, 5), np.uint8), axes="YX")
    with pytest.raises(MissingFileError) as err:
        io.read_image(tmp_path / "s.zarr", key="seg")
    assert "'raw'" in str(err.value) and "'labels'" in str(err.value)


def test_missing_file_and_unsupported_suffix(tmp_path):
    with pytest.raises(MissingFileError, match="nothere.tif"):
        io.read_image(tmp_path / "nothere.tif")
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match=r"\.ome\.zarr"):
        io.read_image(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="key"):
        io.read_image(tmp_path / "a.tif", key="raw")


def test_hdf5_add_key_keeps_other_datasets(tmp_path):
    p = tmp_path / "c.h5"
    raw = sample((3, 4), "float32")
    io.write_image(p, raw, axes="YX", key="raw")
    io.write_image(f"{p}:labels", np.ones((3, 4), np.uint8), axes="YX")
    np.testing.assert_array_equal(io.read_image(p, key="raw")[0], raw)
    with pytest.raises(InputError, match="overwrite=False"):
        io.write_image(p, raw, axes="YX", key="raw", overwrite=False)
    io.write_image(p, raw * 2, axes="YX", key="raw")  # replace in place
    np.testing.assert_array_equal(io.read_image(p, key="raw")[0], raw * 2)
    np.testing.assert_array_equal(io.read_image(p, key="labels")[0], 1)
    assert sorted(p.parent.iterdir()) == [p]


def test_overwrite_false_refuses_existing_file(tmp_path):
    p = io.write_image(tmp_path / "x.tif", np.zeros((3, 4), np.uint8), axes="YX")
    with pytest.raises(InputError, match="already exists"):
        io.write_image(p, np.ones((3, 4), np.uint8), axes="YX", overwrite=False)
    assert io.read_image(p)[0].max() == 0
    io.write_image(tmp_path / "n.zarr", np.zeros((3, 4)), axes="YX")
    with pytest.raises(InputError, match="already exists"):
        io.write_image(tmp_path / "n.zarr", np.zeros((3, 4)), axes="YX", overwrite=False)


def test_zarr_root_array_overwritten_whole(tmp_path):
    io.write_image(tmp_path / "r.zarr", np.zeros((3, 4, 5)), axes="ZYX")
    io.write_image(tmp_path / "r.zarr", np.ones((2, 3), np.uint8), axes="YX")
    b, axes = io.read_image(tmp_path / "r.zarr")
    assert axes == "YX" and b.shape == (2, 3) and b.dtype == np.uint8
    assert [q.name for q in tmp_path.iterdir()] == ["r.zarr"]


def test_open_array_is_lazy(tmp_path):
    a = sample((2, 6, 7), "float32")
    io.write_image(tmp_path / "l.h5:raw", a, axes="CYX")
    ds, axes = io.open_array(tmp_path / "l.h5:raw")
    assert isinstance(ds, h5py.Dataset) and axes == "CYX"
    np.testing.assert_array_equal(ds[1, 2:4], a[1, 2:4])
    ds.file.close()
    io.write_image(tmp_path / "l.zarr", a, axes="CYX")
    za, axes = io.open_array(tmp_path / "l.zarr")
    assert isinstance(za, zarr.Array) and axes == "CYX"
    with pytest.raises(InputError, match="mode"):
        io.open_array(tmp_path / "l.zarr", mode="w")


# --------------------------------------------------------------------------------------------
# Axes validation
# --------------------------------------------------------------------------------------------


def test_validate_axes_ok():
    assert io.validate_axes("zyx", 3) == "ZYX"
    assert io.validate_axes("YXC", 3) == "YXC"


@pytest.mark.parametrize(
    "axes,ndim,pattern",
    [
        ("YXQ", 3,
         r"unknown axis 'Q'; valid axes letters are C, Z, Y, X \(and T, S for reading only\)"),
        ("YYX", 3, "repeats axis Y"),
        ("ZX", 2, "lacks required axis Y"),
        ("ZYX", 2, "3 letters but the array has 2 dimensions"),
        ("TYX", 3, "only when reading"),
        (3, 3, "must be a string"),
    ],
)
def test_validate_axes_errors(axes, ndim, pattern):
    with pytest.raises(InputError, match=pattern):
        io.validate_axes(axes, ndim)


def test_write_refuses_bad_axes_and_dtypes(tmp_path):
    with pytest.raises(InputError, match="unknown axis 'Q'"):
        io.write_image(tmp_path / "x.tif", np.zeros((2, 3, 4)), axes="QYX")
    with pytest.raises(InputError, match="complex"):
        io.write_image(tmp_path / "x.tif", np.zeros((3, 4), complex), axes="YX")
    with pytest.raises(InputError, match="empty"):
        io.write_image(tmp_path / "x.tif", np.zeros((0, 4)), axes="YX")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Labels and image checks
# --------------------------------------------------------------------------------------------


def test_read_labels_dtype_rules(tmp_path):
    m = np.zeros((4, 5), bool)
    m[1, 2] = True
    io.write_image(tmp_path / "b.tif", m, axes="YX")
    lab, axes = io.read_labels(tmp_path / "b.tif")
    assert lab.dtype == np.uint8 and axes == "YX" and lab.sum() == 1

    f = np.arange(20, dtype=np.float32).reshape(4, 5)
    io.write_image(tmp_path / "f.h5", f, axes="YX")
    lab, _ = io.read_labels(tmp_path / "f.h5")
    assert lab.dtype == np.int64
    np.testing.assert_array_equal(lab, f)

    f[2, 3] = 0.5
    io.write_image(tmp_path / "half.h5", f, axes="YX")
    expected = r"labels must be integers; labels in '.*half\.h5' have dtype float32 with non-integer values, e\.g\. 0\.5"
    with pytest.raises(InputError, match=expected):
        io.read_labels(tmp_path / "half.h5")

    neg = np.zeros((4, 5), np.int16)
    neg[0, 0] = -3
    io.write_image(tmp_path / "neg.zarr", neg, axes="YX")
    with pytest.raises(InputError, match="negative.*-3"):
        io.read_labels(tmp_path / "neg.zarr")

    ints = sample((3, 4, 5), "uint32") // 2
    io.write_image(tmp_path / "i.zarr", ints, axes="ZYX")
    lab, axes = io.read_labels(tmp_path / "i.zarr")
    assert lab.dtype == np.uint32 and axes == "ZYX"


def test_read_labels_channel_axis(tmp_path):
    one = np.ones((1, 4, 5), np.uint16)
    io.write_image(tmp_path / "c1.tif", one, axes="CYX")
    lab, axes = io.read_labels(tmp_path / "c1.tif")
    assert axes == "YX" and lab.shape == (4, 5)
    io.write_image(tmp_path / "c2.tif", np.ones((2, 4, 5), np.uint16), axes="CYX")
    with pytest.raises(InputError, match="2 channels"):
        io.read_labels(tmp_path / "c2.tif")


def test_check_image():
    io.check_image(np.zeros((3, 4), np.float32))
    io.check_image(np.zeros((3, 4), bool))
    a = np.zeros((3, 4), np.float32)
    a[1, 2] = np.nan
    a[2, 0] = np.nan
    a[2, 3] = np.inf
    with pytest.raises(InputError) as err:
        io.check_image(a, name="raw")
    msg = str(err.value)
    assert "raw" in msg and "2 NaN" in msg and "1 infinite" in msg and "(1, 2)" in msg
    with pytest.raises(InputError, match="not a real number"):
        io.check_image(np.array([["a"]]))
    with pytest.raises(InputError, match="not a real number"):
        io.check_image(np.zeros((2, 2), complex))
    with pytest.raises(InputError, match="not a real number"):
        io.check_image(np.zeros((2, 2), object))
    with pytest.raises(InputError, match="empty"):
        io.check_image(np.zeros((0, 3)))


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def test_atomic_tiff_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "keep.tif"
    old = sample((4, 5), "uint8")
    io.write_image(p, old, axes="YX")
    before = p.read_bytes()

    def broken_imwrite(file, data=None, *args, **kwargs):
        with open(file, "wb") as fh:
            fh.write(b"II*\x00 half a tiff")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(RuntimeError, match="disk full"):
        io.write_image(p, np.ones((4, 5), np.uint8), axes="YX")
    assert p.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["keep.tif"]


def test_atomic_hdf5_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "keep.h5"
    io.write_image(p, np.zeros((4, 5)), axes="YX", key="raw")
    before = p.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        io.write_image(p, np.ones((4, 5)), axes="YX", key="labels")
    assert p.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["keep.h5"]


def test_atomic_zarr_write_keeps_old_store(tmp_path, monkeypatch):
    p = tmp_path / "keep.zarr"
    old = sample((4, 5), "uint8")
    io.write_image(p, old, axes="YX")

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("unetkit.data.io.zarr._create_array", broken)
    with pytest.raises(RuntimeError):
        io.write_image(p, np.ones((4, 5), np.uint8), axes="YX")
    np.testing.assert_array_equal(io.read_image(p)[0], old)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["keep.zarr"]


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def test_list_images(tmp_path):
    with pytest.raises(MissingFileError):
        io.list_images(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"\.tif.*\.ome\.zarr"):
        io.list_images(tmp_path)
    io.write_image(tmp_path / "b.tif", np.zeros((3, 4), np.uint8), axes="YX")
    io.write_image(tmp_path / "a.ome.zarr", np.zeros((3, 4), np.uint8), axes="YX")
    io.write_image(tmp_path / "c.PNG", np.zeros((3, 4), np.uint8), axes="YX")
    (tmp_path / "._b.tif").write_bytes(b"")
    (tmp_path / "dir.tif").mkdir()
    with pytest.warns(SkippedFilesWarning, match=r"skipping 1 file\(s\) of unsupported type .*'notes\.txt'"):
        assert [p.name for p in io.list_images(tmp_path)] == ["a.ome.zarr", "b.tif", "c.PNG"]


def test_pair_images_labels(tmp_path):
    img, lab = tmp_path / "img", tmp_path / "lab"
    for name in ["a.tif", "b.ome.zarr", "c.h5"]:
        io.write_image(img / name, np.zeros((3, 4), np.uint8), axes="YX")
    for name in ["a.png", "b.tif", "c.zarr", "extra.tif"]:
        io.write_image(lab / name, np.zeros((3, 4), np.uint8), axes="YX")
    with pytest.warns(SkippedFilesWarning, match=r"1 label file\(s\) .* have no image .*'extra\.tif'"):
        pairs = io.pair_images_labels(img, lab)
    assert [(i.name, l.name) for i, l in pairs] == [
        ("a.tif", "a.png"), ("b.ome.zarr", "b.tif"), ("c.h5", "c.zarr")
    ]
    for n in range(7):
        io.write_image(img / f"z{n}.tif", np.zeros((3, 4), np.uint8), axes="YX")
    with pytest.raises(InputError) as err:
        io.pair_images_labels(img, lab)
    msg = str(err.value)
    assert "7 of 10" in msg and "'z0.tif'" in msg and "'z4.tif'" in msg
    assert "'z5.tif'" not in msg and "2 more" in msg


def test_pair_masks(tmp_path):
    img, bg = tmp_path / "img", tmp_path / "bg"
    for name in ["a.tif", "b.tif", "c.h5"]:
        io.write_image(img / name, np.zeros((3, 4), np.uint8), axes="YX")
    images = sorted(img.iterdir())
    for name in ["a.png", "c.tif", "extra.tif"]:
        io.write_image(bg / name, np.zeros((3, 4), np.uint8), axes="YX")
    with pytest.warns(SkippedFilesWarning, match=r"1 mask file\(s\) .* have no image .*'extra\.tif'"):
        pairs = io.pair_masks(images, bg)
    assert {i.name: m.name for i, m in pairs.items()} == {"a.tif": "a.png", "c.h5": "c.tif"}  # b: no mask
    with pytest.raises(MissingFileError, match="no such file or directory"):
        io.pair_masks(images, tmp_path / "nope")
    with pytest.raises(InputError, match=r"none of the 1 mask\(s\) in .* is named like an image \('z\.tif'\)"):
        io.write_image(tmp_path / "other" / "z.tif", np.zeros((3, 4), np.uint8), axes="YX")
        io.pair_masks(images, tmp_path / "other")
    with pytest.raises(InputError, match="is a single file but there are 3 images"):
        io.pair_masks(images, bg / "a.png")
    assert io.pair_masks(images[:1], bg / "extra.tif") == {images[0]: bg / "extra.tif"}


# --------------------------------------------------------------------------------------------
# Module hygiene
# --------------------------------------------------------------------------------------------


def test_heavy_libraries_imported_lazily():
    top = set()
    package = pathlib.Path(io.__file__).parent  # unetkit/data/io/: every module of it
    for node in (n for f in package.glob("*.py") for n in ast.parse(f.read_text()).body):
        if isinstance(node, ast.Import):
            top.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert not top & {"h5py", "zarr", "tifffile", "PIL"}


def test_key_suffix_on_single_image_file_explained(tmp_path):
    with pytest.raises(InputError, match="hold a single image"):
        io.write_image(f"{tmp_path}/x.tif:raw", np.zeros((3, 4), np.uint8), axes="YX")


# --------------------------------------------------------------------------------------------
# new_array: out-of-core outputs, one key of a container replaced
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["c.zarr", "c.h5", "c.ome.zarr"])
def test_new_array_replaces_only_its_key(tmp_path, target):
    store = tmp_path / target
    keep = np.arange(12, dtype=np.float32).reshape(3, 4)
    io.write_image(f"{store}:raw", keep, axes="YX")
    io.write_image(f"{store}:grp/other", keep + 1, axes="YX")
    with io.new_array(f"{store}:grp/seg", shape=(3, 4), dtype=np.uint8, axes="YX") as out:  # a new key: no overwrite
        out[...] = 1
    with pytest.raises(InputError, match="already exists"):
        with io.new_array(f"{store}:grp/seg", shape=(3, 4), dtype=np.uint8, axes="YX"):
            pass
    with pytest.raises(RuntimeError):  # a failure while writing: the old dataset stays
        with io.new_array(f"{store}:grp/seg", shape=(3, 4), dtype=np.uint8, axes="YX", overwrite=True) as out:
            out[...] = 7
            raise RuntimeError("killed")
    np.testing.assert_array_equal(io.read_image(f"{store}:grp/seg")[0], 1)
    with io.new_array(f"{store}:grp/seg", shape=(3, 4), dtype=np.uint8, axes="YX", overwrite=True) as out:
        out[...] = 2
    np.testing.assert_array_equal(io.read_image(f"{store}:grp/seg")[0], 2)
    np.testing.assert_array_equal(io.read_image(f"{store}:raw")[0], keep)
    np.testing.assert_array_equal(io.read_image(f"{store}:grp/other")[0], keep + 1)
    assert not [p for p in tmp_path.rglob("*.tmp")]
    assert io.target_exists(f"{store}:grp/seg") and not io.target_exists(f"{store}:nope")
