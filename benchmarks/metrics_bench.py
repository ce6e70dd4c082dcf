"""Speed and peak memory of the pixel metrics on synthetic maps, up to MVTec-AD test-set size.

    python benchmarks/metrics_bench.py                       # 100 .. 1700 maps of 256 x 256, numpy
    python benchmarks/metrics_bench.py --sizes 1700x256x256 --device cuda
    python benchmarks/metrics_bench.py --sizes 50x64x64 200x128x128 --no-sklearn

Maps are float32 Gaussian noise plus 2 inside the defects (elliptic blobs on half the images,
a few % of the pixels), like a decent detector's output. For every size it prints wall seconds,
CPU seconds (all threads; the fairer number on a shared machine) and peak extra memory
(tracemalloc: numpy allocations; torch allocations on a GPU are reported via
``torch.cuda.max_memory_allocated``) of ``pixel_auroc``, ``aupro``, ``pixel_ap``, ``evaluate``'s
pixel block (one shared tally for all six pixel/instance keys) and, as a yardstick on the same
pixels, scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from uiad_lite.metrics import aupro, pixel_ap, pixel_auroc
from uiad_lite.metrics.instance import iap_at_recall_from_tally, instance_ap_from_tally
from uiad_lite.metrics.pro import aupro_from_tally
from uiad_lite.metrics.regions import label_regions
from uiad_lite.metrics.tally import tally_scores

DEFAULT_SIZES = ["100x256x256", "425x256x256", "850x256x256", "1700x256x256"]


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        n, height, width = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must look like 1700x256x256, got {text!r}") from error
    return n, height, width


def synthetic_maps(n: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 maps and bool masks: 1-3 random ellipses on every other image."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, height, width), dtype=bool)
    rows, cols = np.ogrid[:height, :width]
    for index in range(1, n, 2):
        for _ in range(int(rng.integers(1, 4))):
            centre_r, centre_c = rng.uniform(0, height), rng.uniform(0, width)
            radius_r, radius_c = rng.uniform(2, height / 5.5), rng.uniform(2, width / 5.5)
            masks[index] |= ((rows - centre_r) / radius_r) ** 2 + ((cols - centre_c) / radius_c) ** 2 <= 1
    maps = rng.standard_normal((n, height, width), dtype=np.float32)
    maps += 2.0 * masks
    return maps, masks


def all_pixel_metrics(maps: np.ndarray, masks: np.ndarray, device: str | None) -> float:
    """What evaluate() does for maps: one tally and one labelling shared by six metrics (returns AU-PRO)."""
    tally = tally_scores(maps, masks, name="maps", device=device)
    regions = label_regions(masks)
    tally.auroc(), tally.average_precision(), tally.best_iou()
    instance_ap_from_tally(tally, regions)
    iap_at_recall_from_tally(tally, regions, 0.9)
    return aupro_from_tally(tally, regions, 0.3)


def measure(function: Callable[[], float], device: str | None) -> tuple[float, float, float, float]:
    """(result, wall seconds, CPU seconds of all threads, peak extra MiB) of one call."""
    cuda = device is not None and device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function()
    if cuda:
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if cuda:
        peak = max(peak, torch.cuda.max_memory_allocated())
    return result, seconds, cpu_seconds, peak / 2**20


def bench_size(n: int, height: int, width: int, args: argparse.Namespace) -> None:
    """Print one table row per metric for one N x H x W stack."""
    from sklearn.metrics import roc_auc_score

    maps, masks = synthetic_maps(n, height, width, args.seed)
    rows: list[tuple[str, Callable[[], float]]] = [
        ("p_auroc", lambda: pixel_auroc(maps, masks, device=args.device)),
        ("aupro (0.3)", lambda: aupro(maps, masks, 0.3, device=args.device)),
        ("p_ap", lambda: pixel_ap(maps, masks, device=args.device)),
        ("all 6 pixel (evaluate)", lambda: all_pixel_metrics(maps, masks, args.device)),
    ]
    if not args.no_sklearn:
        rows.append(("sklearn roc_auc_score", lambda: roc_auc_score(masks.ravel(), maps.ravel())))
    label = f"{n}x{height}x{width}"
    share = 100.0 * masks.mean()
    for name, function in rows:
        value, seconds, cpu_seconds, peak = measure(function, args.device)
        size_columns = f"{label:>16} {maps.size / 1e6:8.1f} {share:7.2f}"
        print(
            f"{size_columns}  {name:<22} {seconds:8.2f} {cpu_seconds:8.2f} {peak:9.0f}  {value:.6f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help="N x H x W of the map stacks (default: " + " ".join(DEFAULT_SIZES) + ")",
    )
    parser.add_argument("--device", default=None, help="torch device for the sorting (default: numpy)")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn yardstick")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"device: {args.device or 'numpy (CPU threads)'}")
    header = ("N x H x W", "Mpixels", "anom %", "metric", "wall s", "CPU s", "peak MiB")
    print("{:>16} {:>8} {:>7}  {:<22} {:>8} {:>8} {:>9}  value".format(*header))
    for n, height, width in args.sizes:
        bench_size(n, height, width, args)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"process peak resident memory: {max_rss:.0f} MiB (includes the maps themselves)")


if __name__ == "__main__":
    main()
