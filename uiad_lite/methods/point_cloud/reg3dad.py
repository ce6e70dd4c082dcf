"""Reg3D-AD (Liu et al. 2023, "Real3D-AD: A Dataset of Point Cloud Anomaly Detection", the dataset's
registration-based baseline; released code github.com/M-3LAB/Real3D-AD, ``main_reg3dad.py`` and
``patchcore/patchcore.py``).

Unorganised scans of one object come in any pose, so a memory bank of coordinates only makes sense once
every cloud sits in one frame. Reg3D-AD therefore

1. takes the first training cloud as the template and registers every training and test cloud onto it
   (:func:`.registration.register`: RANSAC on FPFH matches, then ICP);
2. describes every registered point twice — by a local descriptor and by its registered coordinates —
   and keeps one memory bank per description, thinned to ``memory_size`` (released 10000) by greedy
   k-center (PatchCore's coreset);
3. scores a test point, per bank, by the mean squared distance to its ``num_neighbors`` nearest bank
   entries (PatchCore's ``NearestNeighbourScorer`` on FAISS squared L2), the object by the largest point
   score (``object_score="max"``, released ``_predict_pmae`` / ``_predict``: ``np.max``). Released
   neighbours: 1. ``start.sh`` passes ``--anomaly_scorer_num_nn 1`` (the click default is 5), and
   ``main_reg3dad.py`` hands it to ``PatchCore.load`` as ``anomaly_scorer_num_nn`` while ``load`` reads
   ``anomaly_score_num_nn`` (default 1), so the value lands in ``**kwargs`` and one neighbour is used
   whatever the flag says. ``object_score="reweighted"`` (not in the released Reg3D-AD; BTF's
   ``compute_s_s_map``, PatchCore's Eq. 7, :func:`.btf.reweighted_score`) multiplies each bank's object
   score by w = 1 - exp(s*/√D) / Σ_j exp(d_j/√D), from the Euclidean distance s* of the worst point to
   its nearest bank entry m* and the distances d_j to the ``n_reweight`` - 1 next bank neighbours of m*
   (on the synthetic clouds it lowers the object AUROC by about 0.02, ``benchmarks/point_cloud_bench.py``);
4. combines the two banks (``normalise="batch"``, released): each bank's point scores are min-max
   scaled over all points of the test batch and its object scores over the test objects, then the two
   are averaged (Real3D-AD's ``main_reg3dad.py``). ``normalise="fit"`` divides each bank's distances by
   a scale learned at fit time (the 95th percentile of held-out training scores: each training cloud
   against the bank of the others), so a sample's score does not depend on what else is in the batch;
   with ``object_score="max"`` the object then scores its largest combined point score, with
   ``"reweighted"`` the banks' (scaled) re-weighted object scores are combined. ``combine="max"`` takes,
   per point and per object, the larger of the banks' normalised scores instead of their mean.

Scale: ``voxel_size`` sets the RANSAC voxel and the FPFH radii (2 and 5 voxels). The released 0.5 mm suits
Real3D-AD's dense scans (``preset="paper"``); ``"auto"`` (quick preset) takes four times the template's
median point spacing, so sparser clouds keep enough neighbours per descriptor.

Where we depart: the released local descriptor is Point-MAE (a transformer pre-trained on ShapeNet); we
use FPFH (``features=("fpfh", "xyz")``) so that the method runs offline on two CPU cores; the released
scoring path stops after RANSAC, we refine with ICP (``icp=False`` restores it).

RANSAC draws at random; a registration whose fitness stays below ``retry_below`` (0.95) is redone with
other seeds, up to ``retries`` (3) times, keeping the best (not in the released code, where one unlucky
draw of a symmetric-looking part leaves a normal cloud misaligned and scored as a gross anomaly).
Each registration is kept (``fit_registrations_``, ``registrations_``: fitness and inlier RMSE); one whose
fitness falls below ``min_fitness`` raises a warning naming the sample instead of scoring silently.
``register=False`` skips step 1 (the registration-free banks the chapter compares against), and
``features=("fpfh",)`` alone is Real3D-AD's "PatchCore + FPFH" baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from uiad_lite.data.sample import Sample
from uiad_lite.features.backbones import resolve_device
from uiad_lite.features.point_features import check_points, point_fpfh
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.memory_bank.coreset import coreset_indices
from uiad_lite.methods.memory_bank.nearest_neighbours import nearest_neighbours
from uiad_lite.methods.point_cloud.btf import reweighted_score
from uiad_lite.methods.point_cloud.registration import RegistrationResult, downsample_with_fpfh, register

FEATURES = ("fpfh", "xyz")
NORMALISATIONS = ("batch", "fit")
OBJECT_SCORES = ("max", "reweighted")


def _name(sample: Sample) -> str:
    return sample.path or f"{sample.category}/{sample.split}/{sample.defect}"


def auto_voxel_size(points: np.ndarray, factor: float = 4.0) -> float:
    """``factor`` × the median distance between a point and its nearest neighbour (the cloud's spacing)."""
    from scipy.spatial import cKDTree

    spacing = cKDTree(points).query(points, k=2)[0][:, 1]
    return float(factor * np.median(spacing[spacing > 0])) if (spacing > 0).any() else 1.0


def _minmax(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


class Reg3DAD:
    """Registration + point-level memory banks (module docstring). Needs ``Sample.points``."""

    def __init__(
        self,
        voxel_size: float | str = "auto",
        feature_voxel_size: float | None = None,
        features: Sequence[str] = ("fpfh", "xyz"),
        register: bool = True,
        icp: bool = True,
        icp_distance: float | None = None,
        icp_method: str = "point_to_point",
        ransac_iterations: int = 100000,
        confidence: float = 0.999,
        min_fitness: float = 0.8,
        retries: int = 3,
        retry_below: float = 0.95,
        memory_size: int = 10000,
        num_neighbors: int = 1,
        normalise: str = "batch",
        combine: str = "mean",
        object_score: str = "max",
        n_reweight: int = 3,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        features = tuple(features)
        if not features or set(features) - set(FEATURES):
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {features}")
        if combine not in ("mean", "max"):
            raise ValueError(f"unknown combine {combine!r}; choose 'mean' (released) or 'max'")
        if object_score not in OBJECT_SCORES:
            raise ValueError(f"unknown object_score {object_score!r}; choose one of {list(OBJECT_SCORES)}")
        if normalise not in NORMALISATIONS:
            raise ValueError(f"unknown normalise {normalise!r}; choose one of {list(NORMALISATIONS)}")
        if voxel_size != "auto" and not (isinstance(voxel_size, (int, float)) and voxel_size > 0):
            raise ValueError(f"voxel_size must be a positive length or 'auto', got {voxel_size!r}")
        if memory_size < 1 or num_neighbors < 1:
            raise ValueError("memory_size and num_neighbors must be at least 1")
        self.voxel_size, self.feature_voxel_size, self.features = voxel_size, feature_voxel_size, features
        self.register, self.icp, self.icp_distance, self.icp_method = (
            bool(register),
            bool(icp),
            icp_distance,
            icp_method,
        )
        self.ransac_iterations, self.confidence, self.min_fitness = (
            int(ransac_iterations),
            confidence,
            min_fitness,
        )
        self.memory_size, self.num_neighbors, self.normalise = int(memory_size), int(num_neighbors), normalise
        self.combine, self.object_score, self.n_reweight = combine, object_score, int(n_reweight)
        self.retries, self.retry_below = int(retries), float(retry_below)
        self.seed, self.progress, self.device = int(seed), progress, resolve_device(device)
        self.template_: np.ndarray | None = None
        self.voxel_size_: float | None = None
        self.template_features_ = None
        self.banks_: dict[str, torch.Tensor] | None = None
        self.trees_: dict = {}
        self.scales_: dict[str, float] = {}
        self.fit_registrations_: list[RegistrationResult | None] = []
        self.registrations_: list[RegistrationResult | None] = []

    # ---------------------------------------------------------------------------------- steps 1 and 2
    def _points(self, sample: Sample) -> np.ndarray:
        sample.require("points")
        return check_points(sample.points, _name(sample))

    def align(self, points: np.ndarray, name: str = "") -> tuple[np.ndarray, RegistrationResult | None]:
        """``points`` registered onto the template (unchanged when ``register=False``), and the result."""
        if not self.register:
            return points, None
        result = None
        for attempt in range(1 + self.retries):  # RANSAC is random: a poor pose gets fresh draws
            trial = register(
                points,
                self.template_,
                self.voxel_size_,
                icp=self.icp,
                icp_distance=self.icp_distance,
                icp_method=self.icp_method,
                ransac_iterations=self.ransac_iterations,
                confidence=self.confidence,
                seed=self.seed + attempt,
                target_features=self.template_features_,
            )
            result = trial if result is None or trial.fitness > result.fitness else result
            if result.fitness >= self.retry_below:
                break
        if result.fitness < self.min_fitness:
            warnings.warn(
                f"Reg3D-AD: registration of {name or 'a cloud'} onto the template failed "
                f"(fitness {result.fitness:.2f} < min_fitness {self.min_fitness}, inlier RMSE "
                f"{result.inlier_rmse:.3g}); its scores compare misaligned points",
                stacklevel=3,
            )
        return result.apply(points), result

    def describe(self, aligned: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-bank descriptors (M×d) of the described points and the owner index of every input point."""
        desc = point_fpfh(aligned, self.voxel_size_, self.feature_voxel_size)
        out = {"fpfh": desc.features, "xyz": desc.points}
        return {kind: out[kind].astype(np.float32) for kind in self.features}, desc.owner

    def _distances(self, kind: str, queries: np.ndarray, bank: torch.Tensor | None = None) -> np.ndarray:
        """Mean squared Euclidean distance of each query to its ``num_neighbors`` nearest bank rows (exact:
        a k-d tree on the CPU, blockwise ``cdist`` on an accelerator)."""
        bank = self.banks_[kind] if bank is None else bank
        k = min(self.num_neighbors, len(bank))
        if bank.device.type == "cpu":
            from scipy.spatial import cKDTree

            tree = self.trees_.get(kind) if bank is self.banks_.get(kind) else None
            tree = tree or cKDTree(bank.numpy())
            found = tree.query(queries, k=k)[0].reshape(len(queries), k)
            return np.square(found).mean(axis=1)
        found, _ = nearest_neighbours(torch.from_numpy(queries).to(bank.device), bank, k)
        return found.square().mean(dim=1).cpu().numpy()

    def fit(self, samples: Sequence[Sample]) -> Reg3DAD:
        if len(samples) == 0:
            raise ValueError("Reg3DAD needs at least one training cloud")
        clouds = [self._points(s) for s in samples]
        self.template_ = clouds[0]
        self.voxel_size_ = (
            auto_voxel_size(self.template_) if self.voxel_size == "auto" else float(self.voxel_size)
        )
        self.template_features_ = (
            downsample_with_fpfh(self.template_, self.voxel_size_) if self.register else None
        )
        described, self.fit_registrations_ = [], []
        for sample, cloud in tqdm(
            list(zip(samples, clouds, strict=True)),
            desc="Reg3D-AD fit",
            disable=not self.progress,
            leave=False,
        ):
            aligned, result = (cloud, None) if cloud is self.template_ else self.align(cloud, _name(sample))
            self.fit_registrations_.append(result)
            described.append(self.describe(aligned)[0])
        self.banks_, self.trees_ = {}, {}
        for kind in self.features:
            stacked = torch.from_numpy(np.concatenate([d[kind] for d in described]))
            ratio = min(1.0, self.memory_size / len(stacked))
            keep = coreset_indices(stacked, ratio, self.seed, sampler="greedy") if ratio < 1 else slice(None)
            self.banks_[kind] = stacked[keep].contiguous().to(self.device)
            if self.device.type == "cpu":
                from scipy.spatial import cKDTree

                self.trees_[kind] = cKDTree(self.banks_[kind].numpy())
            self.scales_[kind] = self._held_out_scale(kind, described) if self.normalise == "fit" else 1.0
        return self

    def _held_out_scale(self, kind: str, described: list[dict[str, np.ndarray]]) -> float:
        """95th percentile of each training cloud's scores against a bank of the other clouds."""
        if len(described) < 2:
            return float(np.percentile(self._distances(kind, described[0][kind]), 95)) or 1.0
        rng = np.random.default_rng(self.seed)
        scores = []
        for index, own in enumerate(described):
            others = np.concatenate([d[kind] for j, d in enumerate(described) if j != index])
            others = others[rng.permutation(len(others))[: self.memory_size]]
            scores.append(self._distances(kind, own[kind], torch.from_numpy(others).to(self.device)))
        return float(np.percentile(np.concatenate(scores), 95)) or 1.0

    # ---------------------------------------------------------------------------------- steps 3 and 4
    def eq7_weight(self, kind: str, worst: np.ndarray) -> float:
        """PatchCore's Eq. 7 weight w of the worst point's descriptor ``worst`` against bank ``kind`` (as
        BTF's released ``compute_s_s_map`` writes it, :func:`.btf.reweighted_score`); 1 when
        ``object_score="max"``."""
        if self.object_score == "max":
            return 1.0
        bank = self.banks_[kind]
        query = torch.from_numpy(np.ascontiguousarray(worst, dtype=np.float32))[None].to(bank.device)
        star, nearest = nearest_neighbours(query, bank, 1)
        if float(star[0, 0]) == 0.0:
            return 1.0  # s* = 0: the object scores 0 whatever the weight
        score = reweighted_score(star[:, 0], nearest[:, 0], query, bank, self.n_reweight)
        return score / float(star[0, 0])

    def predict(self, samples: Sequence[Sample]) -> Prediction:
        if self.banks_ is None:
            raise NotFittedError("Reg3DAD.predict() called before fit()")
        per_bank: dict[str, list[np.ndarray]] = {kind: [] for kind in self.features}
        per_object: dict[str, list[float]] = {kind: [] for kind in self.features}
        self.registrations_ = []
        for sample in tqdm(samples, desc="Reg3D-AD predict", disable=not self.progress, leave=False):
            aligned, result = self.align(self._points(sample), _name(sample))
            self.registrations_.append(result)
            descriptors, owner = self.describe(aligned)
            for kind in self.features:
                points = self._distances(kind, descriptors[kind])[owner] / self.scales_[kind]
                worst = int(np.argmax(points))
                weight = self.eq7_weight(kind, descriptors[kind][owner[worst]])
                per_bank[kind].append(points)
                per_object[kind].append(weight * float(points[worst]))
        lengths = np.cumsum([len(p) for p in per_bank[self.features[0]]])[:-1]
        point_total = np.zeros(int(sum(len(p) for p in per_bank[self.features[0]])))
        object_total = np.zeros(len(samples))
        for kind in self.features:
            points, objects = np.concatenate(per_bank[kind]), np.array(per_object[kind])
            if self.normalise == "batch":
                points, objects = _minmax(points), _minmax(objects)
            if self.combine == "mean":
                point_total += points / len(self.features)
                object_total += objects / len(self.features)
            else:  # a point (object) is as anomalous as the bank that finds it most anomalous
                point_total, object_total = np.maximum(point_total, points), np.maximum(object_total, objects)
        point_scores = np.split(point_total, lengths)
        if self.normalise == "fit" and self.object_score == "max":
            object_total = np.array([p.max() for p in point_scores])
        return Prediction(scores=object_total, point_scores=point_scores)

    def registration_table(self):
        """fitness / inlier RMSE of the last predict's registrations (a pandas DataFrame)."""
        import pandas as pd

        rows = [
            {"fitness": r.fitness, "inlier_rmse": r.inlier_rmse, "ransac_fitness": r.ransac_fitness}
            for r in self.registrations_
            if r is not None
        ]
        return pd.DataFrame(rows, columns=["fitness", "inlier_rmse", "ransac_fitness"])
