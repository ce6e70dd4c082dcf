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
    """(1, 33, H, W) FPFH image of a (1, 3, H, W) organised cloud, as ``get_fpfh_features`` computes it."""
    o3d = import_open3d()
    cloud = organised.squeeze().permute(1, 2, 0).numpy()
    flat = cloud.reshape(cloud.shape[0] * cloud.shape[1], cloud.shape[2])
    keep = np.nonzero(np.all(flat != 0, axis=1))[0]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(flat[keep, :]))
    search = o3d.geometry.KDTreeSearchParamHybrid
    pcd.estimate_normals(search(radius=voxel_size * 2, max_nn=30))
    feature = o3d.pipelines.registration.compute_fpfh_feature(pcd, search(radius=voxel_size * 5, max_nn=100))
    values = feature.data.T
    full = np.zeros((flat.shape[0], values.shape[1]), dtype=values.dtype)
    full[keep, :] = values
    grid = full.reshape((cloud.shape[0], cloud.shape[1], values.shape[1]))
    return torch.tensor(grid).permute(2, 0, 1).unsqueeze(dim=0)


def released_patches(organised: torch.Tensor, grid: int = 28) -> tuple[torch.Tensor, tuple[int, int]]:
    """(grid², 33) patches: 3×3 mean (stride 1), adaptive mean to grid×grid, as ``FPFHFeatures``."""
    pooled = F.adaptive_avg_pool2d(F.avg_pool2d(released_fpfh_image(organised), 3, stride=1), grid)
    return pooled.reshape(pooled.shape[1], -1).T, tuple(pooled.shape[-2:])


class ReleasedScorer:
    """``compute_s_s_map`` of the released ``Features`` for one image, keeping the released bookkeeping."""

    def __init__(self, bank: torch.Tensor, image_size: int = 224, n_reweight: int = 3) -> None:
        self.bank, self.image_size, self.n_reweight = bank, image_size, n_reweight
        self.blur = ImageFilter.GaussianBlur(radius=4)
        self.image_preds: list = []
        self.pixel_preds: list = []
        self.predictions: list = []

    def _blur(self, score_map: torch.Tensor) -> torch.Tensor:  # KNNGaussianBlur: via an 8-bit PIL image
        top = score_map.max()
        as_bytes = (score_map[0, 0] / top).mul(255).byte().numpy()
        blurred = np.asarray(Image.fromarray(as_bytes, mode="L").filter(self.blur), dtype=np.float32) / 255
        return torch.from_numpy(blurred)[None] * top

    def predict(self, organised: torch.Tensor) -> float:
        patch, dims = released_patches(organised)
        dist = torch.cdist(patch, self.bank)
        min_val, min_idx = torch.min(dist, dim=1)
        s_idx = torch.argmax(min_val)
        s_star = torch.max(min_val)
        m_test = patch[s_idx].unsqueeze(0)
        m_star = self.bank[min_idx[s_idx]].unsqueeze(0)
        _, nn_idx = torch.topk(torch.cdist(m_star, self.bank), k=self.n_reweight, largest=False)
        m_star_knn = torch.linalg.norm(m_test - self.bank[nn_idx[0, 1:]], dim=1)
        scale = torch.sqrt(torch.tensor(patch.shape[1]))
        score = (1 - torch.exp(s_star / scale) / torch.sum(torch.exp(m_star_knn / scale))) * s_star
        s_map = F.interpolate(
            min_val.view(1, 1, *dims), size=(self.image_size, self.image_size), mode="bilinear"
        )
        s_map = self._blur(s_map)
        self.image_preds.append(score.numpy())
        self.pixel_preds.extend(s_map.flatten().numpy())
        self.predictions.append(s_map.detach().cpu().squeeze().numpy())
        return float(score)


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
