"""One-class classification (chapter 05) on the synthetic RGB categories: accuracy and time per method.

    python benchmarks/one_class_bench.py                         # preset "quick", CPU, 2 threads
    python benchmarks/one_class_bench.py --methods simplenet glass --categories brick grass
    python benchmarks/one_class_bench.py --preset paper --device cuda --dataset mvtec_ad --root /data/mvtec
    python benchmarks/one_class_bench.py --json out.json

For every method (``cutpaste``, ``simplenet``, ``glass`` by default) and category: a fresh detector from
``uiad_lite.methods.create(name, preset=...)`` is fitted on the category's normal training images
(``data.load(..., size="quick")``: 100 train / 60 test images at 224 px on the synthetic benchmark) and
evaluated on its test images. Reported: I-AUROC, P-AUROC, AU-PRO (``uiad_lite.metrics``), fit seconds
(feature extraction and training included; the shared feature cache is disabled so each fit is cold),
predict milliseconds per image and the CPU seconds of both (all threads; fairer on a shared machine).

Target (issue 14, measured on held-out real textures, not here): every one-class method >= 0.65 image
AUROC with ``preset="quick"``; this script prints the synthetic analogue and the mean per method.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pandas as pd
import torch

from uiad_lite import data, methods, metrics

TARGET_I_AUROC = 0.65
DEFAULT_METHODS = ("cutpaste", "simplenet", "glass")


def run(
    name: str, preset: str, dataset: str, root: str | None, category: str, device: str, seed: int
) -> dict:
    split = data.load(dataset, root=root, category=category, size="quick")
    detector = methods.create(name, preset=preset, device=device, seed=seed, progress=False)
    wall, cpu = time.perf_counter(), time.process_time()
    detector.fit(split.train)
    fit_s, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    prediction = detector.predict(split.test)
    predict_s, predict_cpu = time.perf_counter() - wall, time.process_time() - cpu
    scores = metrics.evaluate(prediction, split.test)
    return {
        "method": name, "category": category, "train": len(split.train), "test": len(split.test),
        "i_auroc": scores["i_auroc"], "p_auroc": scores["p_auroc"], "aupro": scores["aupro"],
        "fit_s": fit_s, "predict_ms_per_image": 1000 * predict_s / len(split.test),
        "cpu_s": fit_cpu + predict_cpu,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--categories", nargs="+", default=None, help="default: every RGB category")
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["UIAD_FEATURE_CACHE"] = "off"  # cold fits: every method extracts its own features
    chosen = args.categories or data.categories(args.dataset, root=args.root, setting="rgb")
    rows = []
    for name in args.methods:
        for category in chosen:
            row = run(name, args.preset, args.dataset, args.root, category, args.device, args.seed)
            rows.append(row)
            print(f"{name:10s} {category:8s} I-AUROC {row['i_auroc']:.3f}  P-AUROC {row['p_auroc']:.3f}  "
                  f"AU-PRO {row['aupro']:.3f}  fit {row['fit_s']:6.1f} s  "
                  f"predict {row['predict_ms_per_image']:6.1f} ms/image", flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    means = table.groupby("method", sort=False)[
        ["i_auroc", "p_auroc", "aupro", "fit_s", "predict_ms_per_image"]
    ]
    summary = means.mean()
    summary["target_i_auroc"] = TARGET_I_AUROC
    print(f"\nmean over {len(chosen)} categories ({args.dataset}, preset {args.preset!r}):")
    print(summary.round(3).to_string())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
