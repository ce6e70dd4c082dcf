"""Memory-bank detectors (survey Sec. 3.1.4, Table 4): keep what normal patches look like, score a test
patch by how far it is from that memory.

* :class:`PaDiM` (``padim.py``) — one Gaussian per grid position, Mahalanobis distance.
* :class:`PatchCore` (``patchcore.py``) — a coreset of all normal patch features, nearest-neighbour distance.
* :class:`CFA` (``cfa.py``) — features adapted by a trained descriptor, distance to per-position centroids.

Shared pieces: ``patch_detector.py`` (backbone, patch features, anomaly maps), ``coreset.py``
(greedy and approximate-greedy coresets), ``nearest_neighbours.py`` (bounded-memory k-NN search).
Build them by name with :func:`uiad_lite.methods.create`.
"""

from uiad_lite.methods.memory_bank.cfa import CFA, CoordConvDescriptor, coupled_hypersphere_loss
from uiad_lite.methods.memory_bank.coreset import (
    approximate_greedy_coreset,
    coreset_indices,
    greedy_coreset,
    johnson_lindenstrauss_dim,
)
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.memory_bank.padim import PaDiM, fit_gaussians, mahalanobis_distances
from uiad_lite.methods.memory_bank.patch_detector import PatchFeatureDetector, anomaly_maps
from uiad_lite.methods.memory_bank.patchcore import (
    PatchCore,
    PatchCoreFeatures,
    reweighted_image_scores,
    score_against_bank,
)

__all__ = [
    "CFA",
    "CoordConvDescriptor",
    "PaDiM",
    "PatchCore",
    "PatchCoreFeatures",
    "PatchFeatureDetector",
    "anomaly_maps",
    "approximate_greedy_coreset",
    "coreset_indices",
    "coupled_hypersphere_loss",
    "fit_gaussians",
    "greedy_coreset",
    "johnson_lindenstrauss_dim",
    "mahalanobis_distances",
    "nearest_neighbours",
    "reweighted_image_scores",
    "score_against_bank",
]
