"""Seeded synthetic data with several graders per image, for models of segmentation
*distributions* (HPU-Net, method notes section 4) and instance segmentation from samples.

* :func:`ambiguous_objects`: faint and clear discs (2-D) or balls (3-D); each grader marks
  each object independently with the object's presence probability ``p_j`` and with a radius
  jittered by a few pixels. The generative process is known exactly, so the true per-pixel
  foreground probability (:attr:`AmbiguousObjects.probability`, computed in closed form) and
  fresh draws from the true distribution (:func:`sample_truth`) are available: the true GED of
  the graders and the metrics of an oracle can be computed.
* :func:`instance_colouring`: touching cell-like objects (:func:`~unetkit.data.synthetic.blobs`)
  where every grader gives every object a random colour from ``1..n_colours``, redrawn per
  grader (the HPU-Net instance task: a sample is a colouring, instances are pixels whose colours
  agree across samples; :func:`unetkit.clustering.hamming_clustering`).

Image ``i`` is generated from the ``i``-th child of the seed (``Generator.spawn``), so an image
does not depend on ``n_images``, and a seed reproduces every array exactly. Axis order: images
``(n, *S)``, graders ``(n, G, *S)``, ``S = (Y, X)`` or ``(Z, Y, X)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.synthetic import SeedLike, _check_nonneg, _check_shape, _place_seeds, _rng, blobs
from unetkit.errors import InputError

__all__ = [
    "AmbiguousObjects",
    "InstanceColouring",
    "ambiguous_objects",
    "instance_colouring",
    "sample_truth",
]


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}={value!r} must be an int >= {minimum}")
    return int(value)


def _check_radius(radius: object) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in radius)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"radius={radius!r} must be a (low, high) pair of radii in pixels") from None
    if not (0 < lo <= hi) or not math.isfinite(hi):
        raise InputError(f"radius={radius!r} must satisfy 0 < low <= high")
    return lo, hi


# --------------------------------------------------------------------------- ambiguous objects


@dataclass
class AmbiguousObjects:
    """Output of :func:`ambiguous_objects` (``n`` images, ``G`` graders, ``K`` object slots).

    Attributes:
        images: ``(n, *S)`` float32 images.
        graders: ``(n, G, *S)`` int64 binary masks (1 = foreground), independent draws from
            each image's true distribution.
        probability: ``(n, *S)`` float64, the exact per-pixel foreground probability of the
            generative process, ``sum_j p_j sum_k q_k [d_j(x) <= r_j + o_k]``.
        centres: ``(n, K, ndim)`` float64 object centres in pixels (padding slots: 0).
        radii: ``(n, K)`` float64 nominal radii ``r_j`` (padding: 0).
        presence: ``(n, K)`` float64 presence probabilities ``p_j`` (padding: 0, never drawn).
        n_objects: ``(n,)`` int64, the number of real objects per image (slots ``0..n_objects-1``).
        offsets: ``(J,)`` float64 radius offsets ``o_k`` a grader draws from (in pixels).
        offset_probs: ``(J,)`` float64 their probabilities ``q_k`` (sum 1).
        contrast: ``(n, K)`` float64 object intensities in the image (padding: 0).
    """

    images: np.ndarray
    graders: np.ndarray
    probability: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    presence: np.ndarray
    n_objects: np.ndarray
    offsets: np.ndarray
    offset_probs: np.ndarray
    contrast: np.ndarray

    def sample(self, i: int, n: int, rng: SeedLike = None) -> np.ndarray:
        """``(n, *S)`` int64 masks drawn from image ``i``'s true distribution (:func:`sample_truth`)."""
        return sample_truth(self, i, n, rng)


def _distances(shape: tuple[int, ...], centres: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner ``(*S)`` int64 (the object whose disc of radius ``outer[j]`` holds the pixel, -1 for
    none) and distance ``(*S)`` float64 to that object's centre (inf where none). The outer discs
    must be disjoint (placement guarantees it). A loop over objects, not pixels."""
    ndim = len(shape)
    owner = np.full(shape, -1, dtype=np.int64)
    dist = np.full(shape, np.inf)
    grids = [np.arange(n, dtype=np.float64).reshape([n if a == ax else 1 for a in range(ndim)])
             for ax, n in enumerate(shape)]
    for j, (c, r) in enumerate(zip(centres, outer)):
        d2 = sum((g - cj) ** 2 for g, cj in zip(grids, c))
        d = np.sqrt(np.broadcast_to(d2, shape))
        inside = d <= r
        owner[inside] = j
        dist[inside] = d[inside]
    return owner, dist


def _draw(owner: np.ndarray, dist: np.ndarray, radii: np.ndarray, presence: np.ndarray,
          offsets: np.ndarray, offset_probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` masks ``(n, *S)`` int64: per mask and object, present with ``presence[j]`` and of
    radius ``radii[j] + offsets[k]``, ``k ~ offset_probs``. Vectorised over masks and pixels."""
    k = len(radii)
    if k == 0:
        return np.zeros((n, *owner.shape), dtype=np.int64)
    present = rng.random((n, k)) < presence[None]
    jitter = offsets[rng.choice(len(offsets), size=(n, k), p=offset_probs)]
    reach = np.where(present, radii[None] + jitter, -np.inf)  # (n, K); absent: nothing inside
    reach = np.concatenate([reach, np.full((n, 1), -np.inf)], axis=1)  # slot -1: outside all
    return (dist[None] <= reach[:, owner]).astype(np.int64)


def _geometry(data: AmbiguousObjects, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    k = int(data.n_objects[i])
    centres, radii, presence = data.centres[i, :k], data.radii[i, :k], data.presence[i, :k]
    owner, dist = _distances(data.images.shape[1:], centres, radii + data.offsets.max())
    return owner, dist, radii, presence


def sample_truth(data: AmbiguousObjects, i: int, n: int, rng: SeedLike = None) -> np.ndarray:
    """``n`` fresh masks from image ``i``'s TRUE distribution (the process the graders come from).

    Args:
        data: the output of :func:`ambiguous_objects`.
        i: image index in ``0..len(images)-1``.
        n: number of masks (>= 1).
        rng: seed of the draws (int, ``None``, SeedSequence or Generator).

    Returns:
        ``(n, *S)`` int64 binary masks; e.g. ``ged(sample_truth(data, i, 100, 0), data.graders[i])``
        is (a Monte-Carlo estimate of) the GED of a perfect model.
    """
    if not isinstance(data, AmbiguousObjects):
        raise InputError(f"data must be the AmbiguousObjects of ambiguous_objects(), got {type(data).__name__}")
    n_img = len(data.images)
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n_img:
        raise InputError(f"i={i!r} must be an image index in 0..{n_img - 1}")
    n = _check_count(n, "n", 1)
    gen = _rng(rng)
    owner, dist, radii, presence = _geometry(data, int(i))
    return _draw(owner, dist, radii, presence, data.offsets, data.offset_probs, n, gen)


def ambiguous_objects(
    n_images: int,
    shape: Sequence[int] = (64, 64),
    n_graders: int = 4,
    *,
    seed: SeedLike,
    n_objects: int = 4,
    radius: tuple[float, float] = (5.0, 9.0),
    presence: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    offsets: Sequence[float] = (-1.0, 0.0, 1.0),
    offset_probs: Sequence[float] = (0.25, 0.5, 0.25),
    contrast: tuple[float, float] = (0.3, 1.0),
    noise: float = 0.1,
    blur: float = 1.0,
) -> AmbiguousObjects:
    """Images of faint and clear objects with ``n_graders`` ambiguous binary annotations each.

    Generative process, per image: up to ``n_objects`` discs (2-D) or balls (3-D) with integer
    centres and nominal radius ``r_j`` uniform in ``radius``, placed by dart throwing so that even
    at the largest radius ``r_j + max(offsets)`` no two objects overlap or touch (the placement of
    :func:`~unetkit.data.synthetic.blobs` with ``touching=False``; fewer objects when they do not
    fit); objects may be cut by the image border. Each object gets a presence probability ``p_j``
    drawn uniformly from ``presence``. A grader (and :func:`sample_truth`) marks object ``j``
    independently with probability ``p_j``, with radius ``r_j + o`` where ``o`` is drawn from
    ``offsets`` with probabilities ``offset_probs``; the mask is the union of the marked discs
    (``||x - c_j|| <= r_j + o``).

    Because the outer discs are disjoint, the true foreground probability is exact:
    ``P(x) = p_j * sum_k q_k [||x - c_j|| <= r_j + o_k]`` for the object ``j`` whose outer disc
    holds ``x`` (0 elsewhere).

    Image: every object (at its nominal radius, whatever the graders draw) with intensity
    ``contrast[0] + (contrast[1] - contrast[0]) * p_j`` on a background of 0, so that rarely
    marked objects are faint but still visible (the ambiguity is in the image, not only in the
    labels), then Gaussian blur (``blur`` px, which also blurs the boundary ring where graders
    disagree) and additive Gaussian noise (std ``noise``).

    Args:
        n_images: number of images (>= 0).
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        n_graders: annotations per image (>= 1).
        seed: int, ``None``, SeedSequence or Generator (keyword, required).
        n_objects: objects per image (at most; >= 0).
        radius: ``(low, high)`` nominal radius in pixels; ``low + min(offsets) > 0``.
        presence: the set of presence probabilities, each in ``(0, 1]``.
        offsets: the radius offsets a grader draws from, in pixels.
        offset_probs: their probabilities (non-negative, sum 1, same length as ``offsets``).
        contrast: object intensity at ``p = 0`` and at ``p = 1`` (finite).
        noise: standard deviation of the pixel noise (>= 0).
        blur: Gaussian blur width in pixels (>= 0).

    Returns:
        :class:`AmbiguousObjects` (images, graders, exact probability, object parameters).

    Raises:
        InputError: bad counts, shape, radii, probabilities, offsets, noise or blur (named).
    """
    n_images = _check_count(n_images, "n_images", 0)
    shape_t = _check_shape(shape)
    ndim = len(shape_t)
    n_graders = _check_count(n_graders, "n_graders", 1)
    n_objects = _check_count(n_objects, "n_objects", 0)
    r_lo, r_hi = _check_radius(radius)
    try:
        pres = np.asarray(presence, dtype=np.float64).reshape(-1)
        offs = np.asarray(offsets, dtype=np.float64).reshape(-1)
        q = np.asarray(offset_probs, dtype=np.float64).reshape(-1)
        c_lo, c_hi = (float(v) for v in contrast)
    except (TypeError, ValueError):
        raise InputError(f"presence={presence!r}, offsets={offsets!r}, offset_probs={offset_probs!r} and "
                         f"contrast={contrast!r} must be numbers (contrast a (low, high) pair)") from None
    if pres.size == 0 or not np.all((pres > 0) & (pres <= 1)):
        raise InputError(f"presence={presence!r} must be a non-empty set of probabilities in (0, 1]")
    if offs.size == 0 or not np.all(np.isfinite(offs)):
        raise InputError(f"offsets={offsets!r} must be a non-empty sequence of finite radius offsets")
    if q.shape != offs.shape or not np.all(q >= 0) or not math.isclose(float(q.sum()), 1.0, abs_tol=1e-9):
        raise InputError(f"offset_probs={offset_probs!r} must be {offs.size} non-negative probabilities "
                         f"(one per offset) that sum to 1")
    q = q / q.sum()
    if r_lo + offs.min() <= 0:
        raise InputError(f"radius={radius!r} with offsets={offsets!r}: the smallest radius plus the smallest "
                         f"offset must be > 0")
    if not (math.isfinite(c_lo) and math.isfinite(c_hi)):
        raise InputError(f"contrast={contrast!r} must be finite")
    noise = _check_nonneg(noise, "noise")
    blur = _check_nonneg(blur, "blur")
    children = _rng(seed).spawn(n_images)

    grow = float(offs.max())
    images = np.zeros((n_images, *shape_t), dtype=np.float32)
    graders = np.zeros((n_images, n_graders, *shape_t), dtype=np.int64)
    prob = np.zeros((n_images, *shape_t), dtype=np.float64)
    centres = np.zeros((n_images, n_objects, ndim))
    radii = np.zeros((n_images, n_objects))
    pj = np.zeros((n_images, n_objects))
    cj = np.zeros((n_images, n_objects))
    counts = np.zeros(n_images, dtype=np.int64)
    for i, rng in enumerate(children):
        if n_objects:
            pts, outer = _place_seeds(shape_t, n_objects, (r_lo + grow, r_hi + grow), False, rng,
                                      50 * n_objects + 1000)
        else:
            pts, outer = np.zeros((0, ndim), dtype=np.int64), np.zeros(0)
        k = len(pts)
        counts[i] = k
        r = outer - grow
        p = pres[rng.integers(0, pres.size, size=k)]
        c = c_lo + (c_hi - c_lo) * p
        centres[i, :k], radii[i, :k], pj[i, :k], cj[i, :k] = pts, r, p, c
        owner, dist = _distances(shape_t, pts.astype(np.float64), outer)
        # exact probability: P(inside | object j) = sum_k q_k [d <= r_j + o_k]
        inside = np.zeros(shape_t)
        r_pad = np.r_[r, -np.inf]
        for o, qk in zip(offs, q):
            inside += qk * (dist <= r_pad[owner] + o)
        prob[i] = np.r_[p, 0.0][owner] * inside
        nominal = np.where(dist <= r_pad[owner], np.r_[c, 0.0][owner], 0.0)
        img = ndi.gaussian_filter(nominal, blur, mode="reflect") if blur > 0 else nominal
        if noise > 0:
            img = img + noise * rng.standard_normal(shape_t)
        images[i] = img
        graders[i] = _draw(owner, dist, r, p, offs, q, n_graders, rng)
    return AmbiguousObjects(images=images, graders=graders, probability=prob, centres=centres, radii=radii,
                            presence=pj, n_objects=counts, offsets=offs, offset_probs=q, contrast=cj)


# --------------------------------------------------------------------------- instance colouring


@dataclass
class InstanceColouring:
    """Output of :func:`instance_colouring` (``n`` images, ``G`` graders).

    Attributes:
        images: ``(n, *S)`` float32 images of touching cells.
        graders: ``(n, G, *S)`` int64 colour maps, 0 = background, ``1..n_colours`` = colour of
            the object in that grader's colouring.
        instances: ``(n, *S)`` int64 true instance ids, 0 = background, ``1..K_i``.
        colours: ``(n, G, K + 1)`` int64 colour of instance ``k`` in grader ``g`` (column 0 =
            background = 0; ``K`` is the largest ``K_i``, unused columns 0).
    """

    images: np.ndarray
    graders: np.ndarray
    instances: np.ndarray
    colours: np.ndarray


def instance_colouring(
    n_images: int,
    shape: Sequence[int] = (64, 64),
    n_graders: int = 4,
    n_colours: int = 4,
    *,
    seed: SeedLike,
    radius: tuple[float, float] = (5.0, 10.0),
    density: float = 0.8,
    noise: float = 0.1,
) -> InstanceColouring:
    """Touching cells, each grader colouring every cell with a random colour (HPU-Net's instance task).

    Objects and image: :func:`~unetkit.data.synthetic.blobs` (``touching=True``, ``radius``,
    ``density``, ``noise``; membranes between touching cells in the image). Every grader ``g``
    draws, independently of the others, a colour uniform in ``1..n_colours`` for every object;
    its label map is that colour on the object's pixels (0 on the background). The colouring is
    NOT a proper graph colouring: neighbouring (even touching) objects may get the same colour in
    some graders, and then that grader alone cannot separate them; only the agreement across
    graders (or model samples) identifies the instances, e.g. by
    :func:`unetkit.clustering.hamming_clustering`. Two objects share a colour in one grader with
    probability ``1 / n_colours``, in all ``G`` with ``n_colours ** -G``.

    Args:
        n_images: number of images (>= 0).
        shape: ``(Y, X)`` or ``(Z, Y, X)``.
        n_graders: colourings per image (>= 1).
        n_colours: number of colours (>= 1).
        seed: int, ``None``, SeedSequence or Generator (keyword, required).
        radius: ``(low, high)`` cell radius in pixels.
        density: cell packing, see :func:`~unetkit.data.synthetic.blobs`.
        noise: standard deviation of the pixel noise.

    Returns:
        :class:`InstanceColouring` (images, graders, instances, colours).

    Raises:
        InputError: bad counts or options (named).
    """
    n_images = _check_count(n_images, "n_images", 0)
    shape_t = _check_shape(shape)
    n_graders = _check_count(n_graders, "n_graders", 1)
    n_colours = _check_count(n_colours, "n_colours", 1)
    _check_radius(radius)
    children = _rng(seed).spawn(n_images)
    images = np.zeros((n_images, *shape_t), dtype=np.float32)
    instances = np.zeros((n_images, *shape_t), dtype=np.int64)
    tables = []
    for i, rng in enumerate(children):
        image, labels = blobs(shape_t, radius=radius, density=density, touching=True, noise=noise, seed=rng)
        images[i] = image
        instances[i] = labels
        k = int(labels.max(initial=0))
        table = rng.integers(1, n_colours + 1, size=(n_graders, k + 1), dtype=np.int64)
        table[:, 0] = 0
        tables.append(table)
    k_max = max((t.shape[1] for t in tables), default=1)
    colours = np.zeros((n_images, n_graders, k_max), dtype=np.int64)
    graders = np.zeros((n_images, n_graders, *shape_t), dtype=np.int64)
    for i, table in enumerate(tables):
        colours[i, :, : table.shape[1]] = table
        graders[i] = table[:, instances[i]]  # (G, *S): a lookup per grader, vectorised
    return InstanceColouring(images=images, graders=graders, instances=instances, colours=colours)
