"""Seeded synthetic segmentation data in 2-D and 3-D.

Every generator returns ``(image, labels)``:

* ``image``: ``float32`` array of shape ``shape`` (``(Y, X)`` or ``(Z, Y, X)``), a single
  channel without a channel axis;
* ``labels``: ``int32`` instance ids of the same shape, 0 = background, objects ``1..K``.

Randomness comes only from the ``seed`` argument, which may be an int, ``None``, a
:class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator` (used as it is), so
the same seed reproduces the same arrays exactly.

* :func:`disc_grid`: discs / balls of exact geometry on a regular lattice (the synthetic data
  of the shift-equivariance paper, for testing tile-and-stitch and periodic equivariance).
* :func:`blobs`: crowded, touching cell-like objects with membranes between neighbours.
* :func:`textured_objects`: 3-class semantic data (background, boundary ring, object interior)
  with objects of one size and textures, so that segmenting it depends on the object scale
  (the data of ``unetkit reproduce scale``).
* :func:`make_dataset` / :func:`write_dataset`: many independent samples, in memory or as
  TIFF files.
* :func:`ambiguous_objects`, :func:`sample_truth`, :func:`instance_colouring`: several graders
  per image (segmentation distributions, HPU-Net); defined in :mod:`unetkit.data.ambiguous`
  and re-exported here (lazily, so that either module can be imported first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from unetkit.errors import InputError

__all__ = [
    "SeedLike",
    "blobs",
    "disc_grid",
    "make_dataset",
    "semantic_from_instances",
    "textured_objects",
    "write_dataset",
]

SeedLike = Union[int, np.integer, np.random.SeedSequence, np.random.Generator, None]


# --------------------------------------------------------------------------- helpers


def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(
        seed, (int, np.integer, np.random.SeedSequence, np.random.Generator, type(None))
    ):
        raise InputError(
            f"seed={seed!r} must be an int, None, a numpy SeedSequence or a numpy Generator"
        )
    return np.random.default_rng(seed)


def _check_shape(shape: Sequence[int] | int) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)  # type: ignore[union-attr]
    except TypeError:
        raise InputError(f"shape={shape!r} must be a tuple of 2 or 3 sizes, e.g. (256, 256)") from None
    if len(out) not in (2, 3) or any(s < 1 for s in out):
        raise InputError(f"shape={shape!r} must be a tuple of 2 or 3 positive sizes, e.g. (256, 256) or (64, 64, 64)")
    return out


def _per_axis(value: float | Sequence[float], ndim: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (float(value),) * ndim
    try:
        vals = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except TypeError:
        raise InputError(f"{name}={value!r} must be a number or one number per axis ({ndim})") from None
    if len(vals) != ndim:
        raise InputError(f"{name}={value!r} has {len(vals)} values; expected a number or {ndim} (one per axis)")
    return vals


def _check_nonneg(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}={value!r} must be a number >= 0")
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name}={value!r} must be a finite number >= 0")
    return float(value)


# --------------------------------------------------------------------------- discs


def disc_grid(
    shape: Sequence[int],
    *,
    spacing: int | Sequence[int],
    radius: float,
    offset: float | Sequence[float] = 0,
    noise: float = 0.0,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Discs (2-D) or balls (3-D) of one radius on a regular lattice.

    Lattice points are ``offset + k * spacing`` (per axis, ``k = 0, 1, ...``). A disc is drawn
    only if it fits entirely inside the image; a pixel ``x`` belongs to the disc centred at
    ``c`` iff ``||x - c|| <= radius`` (exactly, no anti-aliasing), so with integer centres
    every disc has the same shape. Objects are numbered ``1..K`` in row-major order of their
    lattice index. No randomness is used unless ``noise > 0``.

    Args:
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        spacing: lattice spacing in pixels, a number or one per axis; must exceed
            ``2 * radius`` so that discs neither overlap nor touch.
        radius: disc radius in pixels (> 0).
        offset: position of the first lattice point (a number or one per axis).
        noise: standard deviation of additive Gaussian noise on the image.
        seed: seed of the noise.

    Returns:
        ``image`` (float32, 1 on discs, 0 elsewhere, plus noise) and ``labels`` (int32),
        both of shape ``shape``.

    Raises:
        InputError: bad shape, ``spacing <= 2 * radius``, ``radius <= 0``, ``noise < 0``.
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    radius = _check_nonneg(radius, "radius")
    if radius <= 0:
        raise InputError(f"radius={radius!r} must be > 0")
    noise = _check_nonneg(noise, "noise")
    spacing_t = _per_axis(spacing, ndim, "spacing")
    offset_t = _per_axis(offset, ndim, "offset")
    if any(s <= 2 * radius for s in spacing_t):
        raise InputError(
            f"spacing={spacing!r} must be larger than 2 * radius = {2 * radius:g} on every axis "
            "(discs would overlap or touch)"
        )
    if not all(math.isfinite(o) for o in offset_t):
        raise InputError(f"offset={offset!r} must be finite")
    rng = _rng(seed)

    # Per axis: the lattice indices k whose disc fits, i.e. ceil(c - r) >= 0 and
    # floor(c + r) <= n - 1 with c = offset + k * spacing. Fitting is separable over axes.
    k_ranges: list[np.ndarray] = []
    for n, s, o in zip(shape, spacing_t, offset_t):
        k_max = int(math.floor((n - 1 + radius - o) / s)) + 1
        k = np.arange(max(k_max, 0))
        c = o + k * s
        fits = (np.ceil(c - radius) >= 0) & (np.floor(c + radius) <= n - 1)
        k_ranges.append(k[fits])
    counts = [len(k) for k in k_ranges]
    labels = np.zeros(shape, dtype=np.int32)
    if 0 in counts:
        image = np.zeros(shape, dtype=np.float32)
    else:
        # Since spacing > 2 r, the only disc that can contain x is the one whose centre is the
        # nearest lattice point on every axis: open grids, broadcast over the image.
        dist2 = np.zeros((1,) * ndim)
        flat = np.zeros((1,) * ndim, dtype=np.int64)
        for ax, (n, s, o, ks) in enumerate(zip(shape, spacing_t, offset_t, k_ranges)):
            x = np.arange(n, dtype=np.float64)
            k = np.clip(np.rint((x - o) / s), ks[0], ks[-1])
            d = x - (o + k * s)
            bshape = [1] * ndim
            bshape[ax] = n
            dist2 = dist2 + (d * d).reshape(bshape)
            flat = flat * counts[ax] + (k - ks[0]).astype(np.int64).reshape(bshape)
        inside = dist2 <= radius * radius
        labels[inside] = (np.broadcast_to(flat, shape)[inside] + 1).astype(np.int32)
        image = inside.astype(np.float32)
    if noise > 0:
        image += rng.standard_normal(shape, dtype=np.float32) * np.float32(noise)
    return image, labels


# --------------------------------------------------------------------------- blobs


def _place_seeds(
    shape: tuple[int, ...],
    n_target: int,
    radii_range: tuple[float, float],
    touching: bool,
    rng: np.random.Generator,
    max_candidates: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Dart throwing in batches: integer seed points ``(K, ndim)`` and radii ``(K,)``, K <= n_target.

    A candidate with radius ``r_i`` is accepted if it keeps the minimum distance to every
    accepted seed ``j``: ``0.7 (r_i + r_j)`` for touching objects (their balls overlap, the
    Voronoi split gives a shared boundary), ``1.25 (r_i + r_j) + 2`` otherwise (a gap of at
    least 2 px even after the boundary perturbation). Candidates come in batches: a batch is
    first checked against the accepted seeds (vectorised, k-d trees), its survivors are then
    accepted greedily in draw order. Stops at ``n_target`` seeds, after ``max_candidates``
    candidates, or after three batches in a row without an accepted seed.
    """
    ndim = len(shape)
    factor, gap = (0.7, 0.0) if touching else (1.25, 2.0)
    reach = factor * 2 * radii_range[1] + gap  # no conflict is farther than this
    pts = np.zeros((0, ndim), dtype=np.int64)
    radii = np.zeros(0)
    drawn = 0
    idle = 0
    while len(pts) < n_target and drawn < max_candidates and idle < 3:
        b = int(min(max(64, 4 * (n_target - len(pts))), max_candidates - drawn))
        drawn += b
        cand = np.stack([rng.integers(0, n, size=b) for n in shape], axis=1)
        cr = rng.uniform(radii_range[0], radii_range[1], size=b)
        ok = np.ones(b, dtype=bool)
        if len(pts):
            dm = cKDTree(cand).sparse_distance_matrix(cKDTree(pts), reach, output_type="ndarray")
            bad = dm["v"] < factor * (cr[dm["i"]] + radii[dm["j"]]) + gap
            ok[dm["i"][bad]] = False  # (the ndarray output keeps zero distances)
        cand, cr = cand[ok], cr[ok]
        pairs = cKDTree(cand).query_pairs(r=reach, output_type="ndarray") if len(cand) > 1 else np.zeros((0, 2), int)
        if len(pairs):
            d = np.linalg.norm((cand[pairs[:, 0]] - cand[pairs[:, 1]]).astype(np.float64), axis=1)
            pairs = np.sort(pairs[d < factor * (cr[pairs[:, 0]] + cr[pairs[:, 1]]) + gap], axis=1)
        # greedy over the surviving candidates (a loop over objects, not pixels)
        earlier: dict[int, list[int]] = {}
        for a, c in pairs.tolist():
            earlier.setdefault(c, []).append(a)
        room = n_target - len(pts)
        accepted = [False] * len(cand)
        n_acc = 0
        for i in range(len(cand)):
            if n_acc == room:
                break
            if any(accepted[j] for j in earlier.get(i, ())):
                continue
            accepted[i] = True
            n_acc += 1
        keep = np.asarray(accepted, dtype=bool)
        pts = np.concatenate([pts, cand[keep]])
        radii = np.concatenate([radii, cr[keep]])
        idle = idle + 1 if n_acc == 0 else 0
    return pts, radii


def _smooth_field(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit standard deviation (float32)."""
    step = max(1, int(sigma // 2))
    coarse = shape if step == 1 else tuple(-(-n // step) + 1 for n in shape)
    field = ndi.gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), sigma / step, mode="wrap")
    if step > 1:
        field = ndi.zoom(field, step, order=1, mode="nearest", grid_mode=False)
        field = field[tuple(slice(0, n) for n in shape)]
    field -= field.mean()
    std = field.std()
    if std > 0:
        field /= std
    return field


def _random_shapes(radii: np.ndarray, ndim: int, rng: np.random.Generator) -> np.ndarray:
    """Quadratic forms ``A_i`` (K, ndim, ndim) of randomly oriented ellipsoids.

    ``x^T A_i x <= 1`` is an ellipsoid whose longest semi-axis is ``radii[i]`` and whose other
    semi-axes are 0.75..1 times that.
    """
    k = len(radii)
    semi = radii[:, None] * rng.uniform(0.75, 1.0, size=(k, ndim))
    semi[:, 0] = radii
    q, r = np.linalg.qr(rng.standard_normal((k, ndim, ndim)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # uniform random rotation
    return np.einsum("kij,kj,klj->kil", q, 1.0 / semi**2, q)


def _keep_largest_piece(labels: np.ndarray) -> np.ndarray:
    """Keep, for every object id, only its largest connected (face-connected) piece."""
    from skimage.measure import label as cc_label

    pieces = cc_label(labels, background=0, connectivity=1)
    n_pieces = int(pieces.max())
    if n_pieces == int(labels.max()):
        return labels  # ids 1..K each with one piece
    owner = np.zeros(n_pieces + 1, dtype=np.int64)
    owner[pieces.ravel()] = labels.ravel()
    size = np.bincount(pieces.ravel(), minlength=n_pieces + 1)
    size[0] = -1
    order = np.lexsort((size, owner))  # by owner, then size ascending
    last_of_owner = np.r_[owner[order][1:] != owner[order][:-1], True]
    keep = np.zeros(n_pieces + 1, dtype=bool)
    keep[order[last_of_owner]] = True
    keep[0] = False
    return np.where(keep[pieces], labels, 0).astype(labels.dtype)


def _touching_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object that have a face neighbour in a different object (not background)."""
    out = np.zeros(labels.shape, dtype=bool)
    for ax in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[ax] = slice(1, None)
        b[ax] = slice(None, -1)
        la, lb = labels[tuple(a)], labels[tuple(b)]
        diff = (la != lb) & (la > 0) & (lb > 0)
        out[tuple(a)] |= diff
        out[tuple(b)] |= diff
    return out


def blobs(
    shape: Sequence[int],
    *,
    n_objects: int | None = None,
    density: float = 0.8,
    radius: tuple[float, float] = (6.0, 14.0),
    touching: bool = True,
    noise: float = 0.1,
    blur: float = 1.0,
    photons: float | None = None,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crowded cell-like objects with instance labels, in 2-D or 3-D.

    Algorithm: seed points are thrown at random with a minimum distance between them (see
    below); each gets a radius uniform in ``radius`` and a randomly oriented ellipsoid (semi-
    axes 0.75..1 times the radius), whose boundary is perturbed by a smooth random field
    (+-20 % at most). A pixel belongs to object ``i`` iff seed ``i`` is its nearest seed
    (Voronoi partition, from :func:`scipy.ndimage.distance_transform_edt`) and it lies in
    object ``i``'s perturbed ellipsoid. Neighbouring objects whose ellipsoids overlap
    therefore touch along their shared Voronoi boundary. Every object is one face-connected
    component (an ellipsoid cut by a Voronoi cell is convex; should the boundary perturbation
    ever split an object, only its largest piece is kept), so no object is lost.

    Image: per-object brightness uniform in 0.5..1.0, darker membranes (x 0.35) on pixels
    where two objects touch, a dim background (0.05..0.15) and a smooth illumination gradient
    (x 0.8..1.2 across the image), then Gaussian blur (``blur`` px), optional Poisson shot
    noise (``photons`` photons at intensity 1) and additive Gaussian noise (std ``noise``).

    Args:
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        n_objects: exact number of objects; :class:`InputError` if they cannot be placed.
            ``None``: derived from ``density``, as many as fit.
        density: with ``n_objects=None``, the summed volume of the objects' balls as a
            fraction of the image (before overlap): ``n = density * volume / ball(mean r)``.
        radius: ``(low, high)`` object radius in pixels.
        touching: ``True``: seeds at least ``0.7 (r_i + r_j)`` apart, so neighbours touch;
            ``False``: at least ``1.25 (r_i + r_j) + 2`` apart, so no two objects touch.
        noise: standard deviation of additive Gaussian noise.
        blur: Gaussian blur width in pixels (0 for none).
        photons: Poisson shot noise level (photons at intensity 1), or ``None`` for none.
        seed: int, ``None``, SeedSequence or Generator.

    Returns:
        ``image`` (float32) and ``labels`` (int32, consecutive ids ``1..K``), both ``shape``.
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    try:
        r_lo, r_hi = (float(v) for v in radius)
    except (TypeError, ValueError):
        raise InputError(f"radius={radius!r} must be a (low, high) pair of radii in pixels") from None
    if not (0 < r_lo <= r_hi) or not math.isfinite(r_hi):
        raise InputError(f"radius={radius!r} must satisfy 0 < low <= high")
    noise = _check_nonneg(noise, "noise")
    blur = _check_nonneg(blur, "blur")
    if photons is not None and (_check_nonneg(photons, "photons") <= 0):
        raise InputError(f"photons={photons!r} must be > 0 or None")
    rng = _rng(seed)
    volume = float(np.prod(shape))
    r_mean = 0.5 * (r_lo + r_hi)
    ball = math.pi * r_mean**2 if ndim == 2 else 4.0 / 3.0 * math.pi * r_mean**3
    if n_objects is None:
        density = _check_nonneg(density, "density")
        n_target = max(1, int(round(density * volume / ball)))
        strict = False
    else:
        if isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) or n_objects < 0:
            raise InputError(f"n_objects={n_objects!r} must be an int >= 0 or None")
        n_target = int(n_objects)
        strict = True
    labels = np.zeros(shape, dtype=np.int32)
    if n_target == 0:
        seeds = np.zeros((0, ndim), dtype=np.int64)
    else:
        max_candidates = int(50 * n_target + 2000)
        seeds, radii = _place_seeds(shape, n_target, (r_lo, r_hi), bool(touching), rng, max_candidates)
        if strict and len(seeds) < n_target:
            raise InputError(
                f"could place only {len(seeds)} of n_objects={n_target} objects with radius={radius!r} "
                f"in shape {shape}; use fewer objects, smaller radii or a larger shape"
            )
    k = len(seeds)
    if k:
        markers = np.ones(shape, dtype=bool)
        markers[tuple(seeds.T)] = False
        idx = ndi.distance_transform_edt(markers, return_distances=False, return_indices=True)
        seed_id = np.zeros(shape, dtype=np.int32)
        seed_id[tuple(seeds.T)] = np.arange(1, k + 1, dtype=np.int32)
        owner = seed_id[tuple(idx)]  # nearest seed, 1..K
        del idx
        forms = _random_shapes(radii, ndim, rng).astype(np.float32)
        own = owner - 1
        d = [np.arange(n, dtype=np.float32).reshape([n if a == ax else 1 for a in range(ndim)])
             - seeds[:, ax].astype(np.float32)[own] for ax, n in enumerate(shape)]
        q = np.zeros(shape, dtype=np.float32)  # d^T A_owner d per pixel
        for i in range(ndim):
            q += forms[:, i, i][own] * d[i] * d[i]
            for j in range(i + 1, ndim):
                q += 2.0 * forms[:, i, j][own] * d[i] * d[j]
        del d
        perturb = np.clip(1.0 + 0.1 * _smooth_field(shape, 0.5 * r_mean, rng), 0.8, 1.2)
        inside = q <= perturb**2
        labels = np.where(inside, owner, 0).astype(np.int32)
        labels = _keep_largest_piece(labels)

    # ---- image
    brightness = np.r_[0.0, rng.uniform(0.5, 1.0, size=k)].astype(np.float32)
    background = np.float32(rng.uniform(0.05, 0.15))
    image = np.where(labels > 0, brightness[labels], background).astype(np.float32)
    if touching and k > 1:
        image[_touching_boundaries(labels)] *= np.float32(0.35)
    direction = rng.standard_normal(ndim)
    direction /= np.linalg.norm(direction) or 1.0
    ramp = np.zeros((1,) * ndim, dtype=np.float32)
    for ax, n in enumerate(shape):
        bshape = [1] * ndim
        bshape[ax] = n
        ramp = ramp + (direction[ax] * (np.arange(n, dtype=np.float32) / max(n - 1, 1) - 0.5)).reshape(bshape)
    image *= 1.0 + np.float32(0.4 / math.sqrt(ndim)) * ramp  # about 0.8..1.2 across the image
    if blur > 0:
        image = ndi.gaussian_filter(image, blur, mode="reflect")
    if photons is not None:
        image = rng.poisson(np.clip(image, 0, None) * photons).astype(np.float32) / np.float32(photons)
    if noise > 0:
        image += rng.standard_normal(shape, dtype=np.float32) * np.float32(noise)

    # consecutive ids 1..K (a safeguard: every object keeps at least its largest piece)
    present = np.unique(labels)
    present = present[present > 0]
    if len(present) != int(labels.max(initial=0)):
        lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
        lut[present] = np.arange(1, len(present) + 1, dtype=np.int32)
        labels = lut[labels]
    return image.astype(np.float32, copy=False), labels.astype(np.int32, copy=False)


def textured_objects(
    shape: Sequence[int],
    *,
    radius: float = 8.0,
    density: float = 0.5,
    boundary: float = 0.25,
    noise: float = 0.1,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Textured discs (2-D) or balls (3-D) of one size with 3-class semantic labels.

    Objects: centres thrown at random without overlap (a gap of at least 2 px between objects,
    the placement of :func:`blobs` with ``touching=False``), radius uniform in
    ``[0.9, 1.1] * radius`` (one size up to +-10 %), as many as fit up to ``density`` times the
    image area; objects may be cut by the image border.

    Labels (``int32``): 0 background; 1 boundary, the ring ``(1 - boundary) r_i < d <= r_i`` at
    distance ``d`` from the centre of object ``i`` (its width ``boundary * r_i`` scales with the
    object); 2 interior, ``d <= (1 - boundary) r_i``.

    Image (``float32``): intensity does not separate the classes, texture and geometry do.
    Every object (ring and interior) is an oriented stripe pattern
    ``0.5 + 0.5 cos(2 pi (x - c_i) . u_i / (r_i / 2) + phi_i)`` (random direction ``u_i`` and
    phase ``phi_i``, period half the object's radius); the background is ``0.5 + g(x) / (2 sqrt 2)``
    with ``g`` isotropic smooth Gaussian noise of unit variance and correlation length
    ``sigma = radius`` (coarser than the stripes), so that objects and background have the same
    mean (0.5) and standard deviation (about 0.35); then additive Gaussian pixel noise of
    standard deviation ``noise``.

    Args:
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        radius: object radius in pixels (>= 2).
        density: target fraction of the image covered by objects, in (0, 1]; dart throwing
            without overlap saturates near 0.3 (2-D) with the 2 px gaps.
        boundary: width of the boundary ring as a fraction of the radius, in (0, 1).
        noise: standard deviation of the pixel noise (>= 0).
        seed: randomness (see the module docstring).

    Returns:
        ``image`` (float32) and ``labels`` (int32, values in {0, 1, 2}), both of shape ``shape``.

    Raises:
        InputError: bad shape, radius, density, boundary or noise.
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    radius = _check_nonneg(radius, "radius")
    if radius < 2:
        raise InputError(f"radius={radius!r} must be >= 2 pixels (the boundary ring and the stripes need room)")
    density = _check_nonneg(density, "density")
    if not 0 < density <= 1:
        raise InputError(f"density={density!r} must be in (0, 1] (the fraction of the image covered by objects)")
    boundary = _check_nonneg(boundary, "boundary")
    if not 0 < boundary < 1:
        raise InputError(f"boundary={boundary!r} must be in (0, 1) (ring width as a fraction of the radius)")
    noise = _check_nonneg(noise, "noise")
    rng = _rng(seed)

    ball = math.pi * radius**2 if ndim == 2 else 4.0 / 3.0 * math.pi * radius**3
    n_target = max(1, int(round(density * math.prod(shape) / ball)))
    pts, radii = _place_seeds(shape, n_target, (0.9 * radius, 1.1 * radius), touching=False, rng=rng,
                              max_candidates=50 * n_target + 1000)
    image = 0.5 + _smooth_field(shape, radius, rng) / (2 * math.sqrt(2.0))
    labels = np.zeros(shape, dtype=np.int32)
    if len(pts):
        seeds = np.ones(shape, dtype=bool)
        seeds[tuple(pts.T)] = False
        index = np.zeros(shape, dtype=np.int64)
        index[tuple(pts.T)] = np.arange(len(pts))
        dist, nearest = ndi.distance_transform_edt(seeds, return_indices=True)
        owner = index[tuple(nearest)]  # object whose centre is nearest, (*shape)
        rel = dist / radii[owner]
        inside = rel <= 1.0
        labels[inside] = np.where(rel[inside] <= 1.0 - boundary, 2, 1)
        u = rng.standard_normal((len(pts), ndim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        phase = rng.uniform(0, 2 * math.pi, size=len(pts))
        o = owner[inside]
        offset = np.stack([g[inside] for g in np.indices(shape)], axis=1) - pts[o]  # (P, ndim)
        arg = 2 * math.pi * np.einsum("pd,pd->p", offset, u[o]) / (radii[o] / 2) + phase[o]
        image[inside] = 0.5 + 0.5 * np.cos(arg)
    image = image + rng.normal(0.0, noise, size=shape) if noise > 0 else image
    return image.astype(np.float32), labels


def semantic_from_instances(labels: np.ndarray) -> np.ndarray:
    """Foreground mask of an instance label array: ``uint8``, 1 where ``labels > 0``."""
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"labels dtype {labels.dtype} is not an integer type; expected instance ids")
    return (labels > 0).astype(np.uint8)


# --------------------------------------------------------------------------- datasets

_KINDS = ("blobs", "discs")


def _generate(
    kind: str, shape: tuple[int, ...], rng: np.random.Generator, kwargs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    if kind == "blobs":
        return blobs(shape, seed=rng, **kwargs)
    params = {"spacing": 16, "radius": 5.0, **kwargs}
    if "offset" not in params:
        spacing = _per_axis(params["spacing"], len(shape), "spacing")
        params["offset"] = tuple(int(rng.integers(0, max(int(s), 1))) for s in spacing)
    return disc_grid(shape, seed=rng, **params)


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise InputError(f"unknown synthetic data kind {kind!r}; valid kinds: {', '.join(_KINDS)}")


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n={n!r} must be an int >= 0 (number of samples)")
    return int(n)


def make_dataset(
    n: int,
    shape: Sequence[int],
    *,
    kind: Literal["blobs", "discs"] = "blobs",
    seed: int | np.random.SeedSequence | None = 0,
    **kwargs: Any,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` independent ``(image, labels)`` samples of shape ``shape``.

    Sample ``i`` is generated from ``numpy.random.SeedSequence(seed).spawn(n)[i]``, so a
    sample does not depend on ``n`` and a seed reproduces the whole list.

    Args:
        n: number of samples.
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        kind: ``"blobs"`` (:func:`blobs`) or ``"discs"`` (:func:`disc_grid`; defaults
            ``spacing=16, radius=5``, and unless ``offset`` is given a random lattice offset
            in ``[0, spacing)`` per sample and axis).
        seed: root seed.
        **kwargs: options of the generator.

    Returns:
        list of ``(image float32, labels int32)`` pairs.
    """
    _check_kind(kind)
    n = _check_n(n)
    shape_t = _check_shape(shape)
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence)) or isinstance(seed, bool):
        raise InputError(f"seed={seed!r} must be an int, None or a numpy SeedSequence")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [_generate(kind, shape_t, np.random.default_rng(ss), dict(kwargs)) for ss in root.spawn(n)]


def write_dataset(
    folder: str | Path,
    n: int,
    shape: Sequence[int],
    *,
    kind: Literal["blobs", "discs"] = "blobs",
    seed: int | np.random.SeedSequence | None = 0,
    semantic: bool = False,
    **kwargs: Any,
) -> tuple[Path, Path]:
    """Write :func:`make_dataset` samples as TIFF files.

    Files: ``folder/images/img_000.tif`` (float32) and ``folder/labels/img_000.tif``
    (int32 instance ids, or uint8 0/1 with ``semantic=True``); the number has at least 3
    digits (more when ``n > 1000``). Existing files of the same names are overwritten.

    Returns:
        ``(image_dir, label_dir)``.
    """
    import tifffile

    _check_kind(kind)
    n = _check_n(n)
    shape_t = _check_shape(shape)
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence)) or isinstance(seed, bool):
        raise InputError(f"seed={seed!r} must be an int, None or a numpy SeedSequence")
    folder = Path(folder)
    image_dir = folder / "images"
    label_dir = folder / "labels"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(max(n - 1, 0))))
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    for i, ss in enumerate(root.spawn(n)):  # one sample in memory at a time
        image, labels = _generate(kind, shape_t, np.random.default_rng(ss), dict(kwargs))
        out_labels = semantic_from_instances(labels) if semantic else labels
        name = f"img_{i:0{width}d}.tif"
        tifffile.imwrite(image_dir / name, image)
        tifffile.imwrite(label_dir / name, out_labels)
    return image_dir, label_dir


_AMBIGUOUS = ("AmbiguousObjects", "InstanceColouring", "ambiguous_objects", "instance_colouring", "sample_truth")


def __getattr__(name: str) -> Any:
    """Lazy re-export of :mod:`unetkit.data.ambiguous` (which imports this module's helpers)."""
    if name in _AMBIGUOUS:
        from unetkit.data import ambiguous

        return getattr(ambiguous, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
