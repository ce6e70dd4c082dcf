"""``btf_fpfh`` predict time per image beside a re-implementation of the released BTF predict path.

    OMP_NUM_THREADS=1 python benchmarks/btf_timing_bench.py                 # both presets, 1 thread
    OMP_NUM_THREADS=1 python benchmarks/btf_timing_bench.py --presets paper --json out.json

Issue 11's target: ``btf_fpfh`` predicts no slower per image than the released code (Horwitz & Hoshen
2023, github.com/eliahuhorwitz/3D-ADS). Both sides get the same organised clouds: the synthetic RGB-D
categories loaded with ``preprocess=True`` (BTF's background-plane removal), 224×224 as the released
loader's nearest resize leaves them. Both run on the same number of threads (``--threads``, default 1;
set ``OMP_NUM_THREADS`` to match, open3d reads it).

"released" below is our own code written to do what the released per-image predict path does, call for
call: ``get_fpfh_features`` (zero points dropped, one open3d cloud, ``estimate_normals`` within
2·0.05 ≤ 30 neighbours, ``compute_fpfh_feature`` within 5·0.05 ≤ 100 neighbours, scattered back to the
224×224 grid), ``FPFHFeatures.predict`` (3×3 mean stride 1, adaptive mean to 28×28, 784 patches) and
``Features.compute_s_s_map`` (``torch.cdist`` to the whole bank, Eq. 7 re-weighting with 3 neighbours,
bilinear map to 224, ``KNNGaussianBlur(4)`` through PIL, and the per-image bookkeeping of predictions).
Its bank has the released size, 10 % of all training patches (784 per image, zero patches included);
the rows are a random draw of the released-path training patches, since the time of an exact search does
not depend on which rows the bank holds. Ours is the fitted ``btf_fpfh`` (its coreset bank, 10 % of the
valid patches), timed one image per ``predict`` call (as the released loop runs) and as one batch.
The per-image times are medians over the test images, the sides alternating image by image.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from uiad_lite import data, methods
from uiad_lite.features.point_features import import_open3d, resize_organised, valid_pixels


def released_fpfh_image(organised: torch.Tensor, voxel_size: float = 0.05) -> torch.Tensor:
    """(1, 33, H, W) FPFH image of a (1, 3, H, W) organised cloud, with the open3d calls, radii and
    neighbour limits of the released ``get_fpfh_features`` (points with any zero coordinate dropped)."""
    o3d = import_open3d()
    height, width = organised.shape[-2:]
    points = organised[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    present = np.flatnonzero((points != 0).all(axis=1))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[present]))
    hybrid = o3d.geometry.KDTreeSearchParamHybrid
    cloud.estimate_normals(hybrid(radius=2 * voxel_size, max_nn=30))
    fpfh = o3d.pipelines.registration.compute_fpfh_feature(cloud, hybrid(radius=5 * voxel_size, max_nn=100))
    image = np.zeros((height * width, fpfh.data.shape[0]), dtype=fpfh.data.dtype)
    image[present] = fpfh.data.T
    return torch.from_numpy(image.reshape(height, width, -1)).permute(2, 0, 1)[None]


def released_patches(organised: torch.Tensor, grid: int = 28) -> tuple[torch.Tensor, tuple[int, int]]:
    """(grid², 33) patches: 3×3 mean (stride 1), adaptive mean to grid×grid, as ``FPFHFeatures``."""
    pooled = F.adaptive_avg_pool2d(F.avg_pool2d(released_fpfh_image(organised), 3, stride=1), grid)
    return pooled.reshape(pooled.shape[1], -1).T, tuple(pooled.shape[-2:])


class ReleasedScorer:
    """The work of the released ``compute_s_s_map`` for one image: exact distances to the whole bank,
    the Eq. 7 re-weighted image score, the bilinear map, the 8-bit PIL blur and the per-image lists."""

    def __init__(self, bank: torch.Tensor, image_size: int = 224, n_reweight: int = 3) -> None:
        self.bank, self.image_size, self.n_reweight = bank, image_size, n_reweight
        self.blur = ImageFilter.GaussianBlur(radius=4)
        self.image_scores: list = []
        self.pixel_scores: list = []
        self.maps: list = []

    def _blur(self, score_map: torch.Tensor) -> torch.Tensor:  # KNNGaussianBlur: via an 8-bit PIL image
        peak = score_map.max()
        grey = (score_map[0, 0] / peak * 255).byte().numpy()
        smoothed = np.asarray(Image.fromarray(grey, mode="L").filter(self.blur), dtype=np.float32) / 255
        return torch.from_numpy(smoothed)[None] * peak

    def predict(self, organised: torch.Tensor) -> float:
        patches, grid = released_patches(organised)
        nearest_distance, nearest_entry = torch.cdist(patches, self.bank).min(dim=1)
        worst = int(nearest_distance.argmax())
        distance = nearest_distance[worst]
        entry = self.bank[nearest_entry[worst]][None]
        # the entry's own nearest bank neighbours (itself first), then the worst patch's distances to them
        neighbours = torch.cdist(entry, self.bank).topk(self.n_reweight, largest=False).indices[0, 1:]
        to_neighbours = (patches[worst][None] - self.bank[neighbours]).norm(dim=1)
        root_dim = float(np.sqrt(patches.shape[1]))
        weight = 1 - torch.exp(distance / root_dim) / torch.exp(to_neighbours / root_dim).sum()
        score_map = F.interpolate(
            nearest_distance.view(1, 1, *grid), size=(self.image_size, self.image_size), mode="bilinear"
        )
        score_map = self._blur(score_map)
        self.image_scores.append((weight * distance).numpy())
        self.pixel_scores.extend(score_map.flatten().numpy())
        self.maps.append(score_map.squeeze().numpy())
        return float(weight * distance)


def as_loader_tensor(xyz: np.ndarray) -> torch.Tensor:
    """The released loader's output for one organised cloud: (1, 3, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32)).permute(2, 0, 1)[None]


def interleaved_ms(calls: dict, items: list, repeats: int) -> dict[str, float]:
    """Median ms per item of each call, the calls alternating item by item (so a change of machine load
    hits every side alike); one warm-up call each first."""
    for call in calls.values():
        call(items[0])
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for item in items:
            for name, call in calls.items():
                start = time.perf_counter()
                call(item)
                times[name].append(1000 * (time.perf_counter() - start))
    return {name: float(np.median(values)) for name, values in times.items()}


def run(category: str, presets: list[str], seed: int, max_train: int | None, repeats: int) -> list[dict]:
    split = data.load("synthetic", category=category, size="quick", max_train=max_train, preprocess=True)
    train, test = list(split.train), list(split.test)
    empty = sum(int(valid_pixels(s.xyz).sum()) < 2 for s in train + test)
    if empty:  # the released get_fpfh_features stops on such a cloud (open3d: "no normal"), ours raises
        print(f"{category}: skipped, {empty} of {len(train) + len(test)} clouds empty after preprocessing")
        return []
    rng = np.random.default_rng(seed)
    train_patches = torch.cat([released_patches(as_loader_tensor(s.xyz))[0] for s in train])
    size = int(0.1 * len(train_patches))
    released = ReleasedScorer(train_patches[torch.from_numpy(rng.choice(len(train_patches), size, False))])
    calls = {"released": lambda s: released.predict(as_loader_tensor(s.xyz))}
    rows = {
        "released": dict(
            side="released (re-implemented)",
            preset="224 px, 28x28",
            bank=size,
            valid_points=float(np.mean([valid_pixels(s.xyz).sum() for s in test])),
        )
    }
    for preset in presets:
        detector = methods.create("btf_fpfh", preset=preset, seed=seed, device="cpu", progress=False)
        detector.fit(train)
        calls[preset] = lambda s, d=detector: d.predict([s])
        side = detector.cloud_size
        described = np.mean([valid_pixels(resize_organised(s.xyz, side)).sum() for s in test])
        rows[preset] = dict(
            side="ours btf_fpfh",
            preset=f"{preset} ({side} px, {detector.grid}x{detector.grid})",
            bank=len(detector.memory_bank_),
            valid_points=float(described),
        )
        start = time.perf_counter()
        detector.predict(test)
        rows[preset]["ms_batch"] = 1000 * (time.perf_counter() - start) / len(test)
        if preset == "paper":  # the released path again, its bank cut to the size of ours
            same = ReleasedScorer(released.bank[: len(detector.memory_bank_)])
            calls["released, bank as ours"] = lambda s, r=same: r.predict(as_loader_tensor(s.xyz))
            rows["released, bank as ours"] = {
                **rows["released"],
                "bank": len(same.bank),
                "preset": "224 px, 28x28, bank as ours",
            }
    for name, value in interleaved_ms(calls, test, repeats).items():
        rows[name]["ms_per_image"] = value
    return [dict(category=category, **row) for row in rows.values()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--categories", nargs="+", default=data.categories("synthetic", setting="rgbd"))
    parser.add_argument("--presets", nargs="+", default=["quick", "paper"], choices=methods.PRESETS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (set OMP_NUM_THREADS alike)")
    parser.add_argument("--max-train", type=int, default=None, help="training clouds (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="passes over the test set")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for category in args.categories:
        for row in run(category, args.presets, args.seed, args.max_train, args.repeats):
            rows.append(row)
            print({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
