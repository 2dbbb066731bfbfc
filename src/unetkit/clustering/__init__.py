"""Clustering of pixel embeddings ``(E, *S)`` into instance labels ``(*S)`` (int32, objects
``1..K``, 0 background / outside ``mask``).

* :func:`mean_shift`: mean shift with a Gaussian (``exp(-d^2 / bandwidth)``) or flat kernel.
* :func:`hdbscan`: scikit-learn's HDBSCAN on a subsample, every pixel to the nearest centroid.
* :func:`mutex_watershed`: mutex watershed on embedding affinities (SPOCO Eq. 12, offsets 1
  attractive and 3, 9, 27 repulsive), via ``mwatershed``.
* :func:`consistency_clustering`: mean-shift objects of the f-embeddings kept when consistent
  (median IoU > ``t_iou``) with the g-embeddings (SPOCO Algorithm 1).
* :func:`hamming_clustering`: instances from ``n`` sampled label maps ``(n, *S)`` of one image
  (HPU-Net appendices G/H): greedy clustering of the pixels' label codes by Hamming distance,
  erosion filter, majority fill (int64 labels; not an embedding method).

Shared conventions (:mod:`unetkit.clustering._common`): an optional boolean ``mask`` (pixels
outside get 0); without a mask the largest cluster is the background
(:func:`largest_to_background`; mean shift only when asked, to keep its earlier behaviour);
``min_size`` (mutex watershed, mean shift) turns segments of fewer pixels into background
(:func:`remove_small_segments`).
"""

from unetkit.clustering._common import largest_to_background, relabel_sequential, remove_small_segments
from unetkit.clustering.consistency import consistency_clustering
from unetkit.clustering.hamming import hamming_clustering
from unetkit.clustering.hdbscan import hdbscan
from unetkit.clustering.mean_shift import mean_shift
from unetkit.clustering.mutex_watershed import mutex_watershed

__all__ = ["consistency_clustering", "hamming_clustering", "hdbscan", "largest_to_background", "mean_shift", "mutex_watershed",
           "relabel_sequential", "remove_small_segments"]
