"""PatchCore on the synthetic benchmark: time and peak memory on one category, accuracy on all RGB ones.

    python benchmarks/memory_bank_bench.py                    # QUICK: efficientnet_lite0, 2 threads, CPU
    python benchmarks/memory_bank_bench.py --full --device cuda   # paper: wide_resnet50_2 layer2+3, 10 %
    python benchmarks/memory_bank_bench.py --categories brick washer --json out.json

Settings (the package's presets, ``uiad_lite.methods.create("patchcore", preset=...)``, at 224 px)
    QUICK (default)  preset "quick": efficientnet_lite0 (offline weights), stages 2+3 (strides 8, 16),
                     10 % approximate-greedy coreset on a 64-d projection (keeps the projected bank in
                     the CPU cache), embedding pooled to 256 dims.
    FULL (--full)    preset "paper" (Roth et al. 2022, as released): wide_resnet50_2 "layer2"+"layer3",
                     embedding pooled to 1024 dims, 10 % coreset on a 128-d projection; needs
                     torchvision's weights (wide_resnet50_2.tv_in1k) in the local cache.

Step 1 times ``fit`` + ``predict`` on ``--timing-category`` (synthetic "quick" variant: 100 train /
60 test images at 224 px), ``--repeats`` times, keeping the fastest run (the machine may be shared), and
reports wall seconds, CPU seconds (all threads; fairer on a shared
machine) and the peak resident memory added by fit + predict (``uiad_lite.results.measure``: RSS
sampled above the level at entry, after data and model are loaded; on CUDA the allocator's peak).
Step 2 reports I-AUROC, P-AUROC and AU-PRO (``uiad_lite.metrics``) on every RGB category and their mean.
Targets (QUICK, 2 CPU cores): fit + predict < 30 s per category, mean I-AUROC >= 0.95, AU-PRO >= 0.85.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from uiad_lite import methods
from uiad_lite.data import categories, load
from uiad_lite.methods.memory_bank import PatchCore
from uiad_lite.metrics import aupro, image_auroc, pixel_auroc
from uiad_lite.results import measure

TARGET_SECONDS = 30.0
TARGET_I_AUROC = 0.95
TARGET_AUPRO = 0.85
QUICK_SETTING = {**methods.preset_settings("patchcore", "quick"), "image_size": 224}
FULL_SETTING = {**methods.preset_settings("patchcore", "paper"), "image_size": 224}


@dataclass
class Run:
    category: str
    train: int
    test: int
    fit_s: float
    predict_s: float
    cpu_s: float
    peak_extra_mib: float
    cuda_peak_mib: float | None
    i_auroc: float
    p_auroc: float
    aupro: float
    bank: int


def run_category(category: str, setting: dict, args: argparse.Namespace) -> Run:
    splits = load("synthetic", category=category, size=args.size)
    train, test = list(splits.train), list(splits.test)  # read every file before the clock starts
    detector = PatchCore(**setting, device=args.device, seed=args.seed, progress=False)
    if detector.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    with measure(args.device) as memory:  # resident memory above the level at entry, sampled
        detector.fit(train)
        fitted = time.perf_counter()
        prediction = detector.predict(test)
    done, cpu_used = time.perf_counter(), time.process_time() - cpu
    labels = np.array([sample.label for sample in test])
    masks = np.stack([sample.mask for sample in test])
    return Run(
        category=category,
        train=len(train),
        test=len(test),
        fit_s=fitted - wall,
        predict_s=done - fitted,
        cpu_s=cpu_used,
        peak_extra_mib=memory.peak_mb,
        cuda_peak_mib=torch.cuda.max_memory_allocated() / 2**20 if detector.device.type == "cuda" else None,
        i_auroc=image_auroc(prediction.scores, labels),
        p_auroc=pixel_auroc(prediction.maps, masks),
        aupro=aupro(prediction.maps, masks),
        bank=int(detector.memory_bank_.shape[0]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full", action="store_true", help="paper setting (wide_resnet50_2, needs cached weights)"
    )
    parser.add_argument("--categories", nargs="*", default=None, help="default: every synthetic RGB category")
    parser.add_argument("--timing-category", default="brick")
    parser.add_argument("--size", default="quick", help="synthetic variant: tiny, quick or full")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timing runs on --timing-category (min is kept)"
    )
    parser.add_argument("--coreset-ratio", type=float, default=None)
    parser.add_argument("--projection-dim", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    setting = dict(FULL_SETTING if args.full else QUICK_SETTING)
    if args.coreset_ratio is not None:
        setting["coreset_ratio"] = args.coreset_ratio
    if args.projection_dim is not None:
        setting["projection_dim"] = args.projection_dim
    names = args.categories or [
        c for c in categories("synthetic") if load("synthetic", category=c, size=args.size).setting == "rgb"
    ]
    order = [args.timing_category] + [c for c in names if c != args.timing_category]
    print(f"PatchCore {setting} on {args.device} with {args.threads} threads; synthetic/{args.size}")
    runs = []
    for category in order:
        repeats = max(1, args.repeats) if category == args.timing_category else 1
        tries = [run_category(category, setting, args) for _ in range(repeats)]
        run = min(tries, key=lambda r: r.fit_s + r.predict_s)  # metrics are identical (seeded)
        run.peak_extra_mib = max(t.peak_extra_mib for t in tries)
        if repeats > 1:
            print(
                f"{category}: fit + predict over {repeats} runs (wall s): "
                f"{[round(t.fit_s + t.predict_s, 1) for t in tries]}; keeping the fastest"
            )
        runs.append(run)
        print(
            f"{run.category:10s} train {run.train:3d} test {run.test:3d} | fit {run.fit_s:6.1f} s  "
            f"predict {run.predict_s:5.1f} s  cpu {run.cpu_s:6.1f} s  peak +{run.peak_extra_mib:6.0f} MiB"
            + (f"  cuda {run.cuda_peak_mib:.0f} MiB" if run.cuda_peak_mib is not None else "")
            + f" | I-AUROC {run.i_auroc:.3f}  P-AUROC {run.p_auroc:.3f}  AU-PRO {run.aupro:.3f}"
            + f"  bank {run.bank}",
            flush=True,
        )
    evaluated = [run for run in runs if run.category in names]
    timing = runs[0]
    mean_i = float(np.mean([run.i_auroc for run in evaluated]))
    mean_pro = float(np.mean([run.aupro for run in evaluated]))
    seconds = timing.fit_s + timing.predict_s
    print(
        f"mean over {len(evaluated)} RGB categories: I-AUROC {mean_i:.3f} (target >= {TARGET_I_AUROC}), "
        f"AU-PRO {mean_pro:.3f} (target >= {TARGET_AUPRO})"
    )
    print(
        f"fit + predict on {timing.category}: {seconds:.1f} s wall, {timing.cpu_s:.1f} s CPU "
        f"(target < {TARGET_SECONDS} s on 2 cores), peak +{timing.peak_extra_mib:.0f} MiB"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "setting": {k: str(v) for k, v in setting.items()},
                    "runs": [asdict(r) for r in runs],
                    "mean_i_auroc": mean_i,
                    "mean_aupro": mean_pro,
                },
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
