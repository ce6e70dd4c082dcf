# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Metrics: what the numbers in every results table measure
#
# Every later chapter ends in a row of numbers: I-AUROC, P-AUROC, AU-PRO, and so on. They are not
# interchangeable. Some ask whether a defective *image* is ranked above a good one, some whether the right
# *pixels* light up, some whether each separate *defect* is found. Some look at every threshold at once,
# some at a single one. And some can be moved by steps that have nothing to do with the detector, such as
# how its maps are rescaled before they are saved. This chapter takes the metrics of the survey's Table 3
# {cite}`lin2024survey` one by one and shows, by experiment on real predictions and on maps built for the
# purpose, what each one rewards and what it misses.

# %% tags=["parameters"]
DATASET = "synthetic"  # any RGB dataset name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of category names (None: every category of the dataset)
QUICK = True  # True: about a minute on two CPU cores; False: full-size data and finer sweeps
DEVICE = "auto"  # unused here: every metric runs on the CPU in seconds
SEED = 0

# %%
import inspect
import time

import numpy as np
import pandas as pd
import plotly.express as px
from sklearn.metrics import roc_auc_score

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, metrics
from uiad_lite.experiment import run_detector
from uiad_lite.methods.base import Prediction
from uiad_lite.methods.baselines.pixel_gaussian import PixelGaussian
from uiad_lite.metrics import diagnostics, normalisation, summary
from uiad_lite.plots.curves import curves_figure, threshold_slider

FPR_STEPS = [0.3, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002]  # slider positions
MIN_REGION_SIZES = [0, 25, 50, 100, 200, 400] if QUICK else [0, 10, 25, 50, 75, 100, 150, 200, 300, 400, 600]
TOP_K = [1, 10, 100, 1000, 10000] if QUICK else [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000]
REFERENCE_IMAGES = 20 if QUICK else None  # training images whose maps set the normalisation bounds

# %% [markdown]
# ## Where this sits
#
# The survey sorts the metrics by the question they answer: about the whole image, about each pixel, or about
# each defect instance. It defines the instance level after DeSTSeg {cite}`zhang2023destseg`, and AU-PRO
# comes from the MVTec AD benchmark {cite}`bergmann2021mvteca`. Table 3 itself prints only formulas, no
# scores. Below is that table in our words (`uiad_lite/metrics/summary.py`), with the name each metric has
# in this package: `metrics.evaluate` returns the keys, the functions compute one metric each. Image-level
# AP is not in the survey's table, but the same formula as P-AP is widely reported on images, so we keep it.
# Two metrics pick their threshold on the test set they grade (F1-max and IoU, "the best one" in the table):
# that is an oracle no deployed detector has, so they read optimistic, and every table of this chapter says
# so in their column names (`summary.label_test_set_thresholds`).

# %%
table3 = summary.metric_summary()
table3.style.hide(axis="index")

# %% [markdown]
# ## The idea in equations
#
# A detector gives every image, and every pixel, a score $s$; larger means more anomalous. Fix a threshold $t$
# and call everything with $s \ge t$ "anomalous". Against the ground truth that gives four counts: true
# positives $TP$ (defective, flagged), false positives $FP$ (normal, flagged), false negatives $FN$
# (defective, missed) and true negatives $TN$. From them,
#
# $$\begin{gathered}\mathrm{TPR} = R = \frac{TP}{TP+FN}, \qquad \mathrm{FPR} = \frac{FP}{FP+TN}, \qquad
#   P = \frac{TP}{TP+FP},\\ F_1 = \frac{2PR}{P+R}, \qquad \mathrm{IoU} = \frac{TP}{TP+FP+FN}.\end{gathered}$$
#
# Sweeping $t$ from $+\infty$ down to the smallest score traces the **ROC curve** (FPR, TPR) and the
# **precision-recall curve** (R, P). Their areas do not depend on any threshold:
#
# $$\begin{gathered}\mathrm{AUROC} = \int_0^1 \mathrm{TPR}\, d(\mathrm{FPR})
#   = \Pr(s_{\text{defective}} > s_{\text{normal}})
#   + \tfrac12 \Pr(s_{\text{defective}} = s_{\text{normal}}),\\
#   \mathrm{AP} = \sum_n (R_n - R_{n-1})\, P_n .\end{gathered}$$
#
# The second form of AUROC is the one to remember: it is the chance that a random defective item outranks a
# random normal one, and a **tie counts one half**. Only the *order* of the scores matters.
#
# **AU-PRO** replaces the TPR by the mean overlap with each connected defect region $C_k$,
# $\mathrm{PRO}(t) = \frac1K \sum_k |P_t \cap C_k| / |C_k|$, and integrates only up to a false-positive rate
# $f_l$ (0.3 by convention), dividing by $f_l$ so that a perfect map scores 1. A map that knows nothing has
# $\mathrm{PRO}(t) \approx \mathrm{FPR}(t)$ (every region is flagged as often as normal pixels are), so its
# AU-PRO is $\frac{1}{f_l}\int_0^{f_l} x\,dx = f_l/2$: **chance is 0.15 at $f_l = 0.3$**, not the 0.5 of
# an AUROC. Note what changed: the pixel
# TPR is the overlap $o_k$ of each region *weighted by its size*,
# $\mathrm{TPR}(t) = \sum_k |C_k|\,o_k / \sum_k |C_k|$, while PRO gives each region the *same* weight.
# A detector that misses every small defect loses little TPR and a lot of PRO.
#
# **Instance metrics** (DeSTSeg): a region counts as found at threshold $t$ when more than half of its pixels
# are flagged. Ordering the regions by the threshold at which each is found, IAP averages the pixel precision
# at those thresholds, and IAP@k reads the precision where k% of the regions are found.

# %% [markdown]
# ## The metrics in code
#
# Everything lives in `uiad_lite/metrics/`: exact over all distinct scores (ties handled as in the
# definitions above), vectorised, and checked against scikit-learn in the tests. `evaluate` computes all
# that apply to a prediction and says which it skipped and why.

# %%
for function in (metrics.image_auroc, metrics.aupro, metrics.instance_ap, metrics.evaluate):
    print(f"{function.__name__}{inspect.signature(function)}")
    print("    " + inspect.getdoc(function).splitlines()[0])

# %% [markdown]
# ## Run it: real predictions to measure
#
# The predictions come from the per-pixel Gaussian of the introduction (`PixelGaussian`): fast, honest, and
# far from perfect, which is what we want here, because a metric is most informative where detectors fail.
# The loop (fit on normal images, predict the test set, evaluate, record) is `run_detector`.

# %%
categories = CATEGORIES or data.categories(DATASET, root=DATA_ROOT, setting="rgb")
floor = run_detector(PixelGaussian, chapter="02_metrics", method="PixelGaussian", dataset=DATASET,
                     categories=categories, root=DATA_ROOT, quick=QUICK, seed=SEED)
maps = {c: run.prediction.maps for c, run in floor.runs.items()}
masks = {c: np.stack([sample.mask for sample in run.dataset.test]) for c, run in floor.runs.items()}
labels = {c: np.array([sample.label for sample in run.dataset.test]) for c, run in floor.runs.items()}
summary.label_test_set_thresholds(floor.table).round(3)

# %%
quality = [key for key in table3["key"] if key in floor.table.columns]  # the Table 3 metrics measured
mean_row = floor.table.round(3).loc["mean", quality].astype(float).sort_values(ascending=False)
print("Mean row, highest to lowest: " + " > ".join(f"{key} {value:.3f}" for key, value in mean_row.items()))
per_category = floor.table.round(3).drop(index="mean")[quality].astype(float)
lowest = per_category.idxmin(axis=1)
print(f"Lowest metric per category: {', '.join(f'{c}: {k}' for c, k in lowest.items())}")
pairs = [("p_auroc", "i_auroc"), ("p_auroc", "aupro"), ("aupro", "p_ap")]
for high, low in pairs:
    above = list(per_category.index[per_category[high] > per_category[low]])
    print(f"{high} above {low} in {len(above)} of {len(per_category)} categories"
          + (f" (not in {', '.join(sorted(set(per_category.index) - set(above)))})"
             if len(above) < len(per_category) else ""))

# %% [markdown]
# Read one row left to right and the same predictions get very different grades; the printed lines order
# the mean row and say in how many categories each ordering holds. The rest of the chapter explains these
# gaps: why pixel and image AUROC differ, why AU-PRO and the precision-based metrics (P-AP, IoU, the instance
# metrics) can sit far below P-AUROC on the same maps.
#
# ## Chance levels
#
# What does a detector that knows nothing score? Give every pixel a random value, independent of the
# masks, and grade those maps against this chapter's ground truth:

# %%
all_masks = np.concatenate([masks[c] for c in categories])
noise = np.random.default_rng(SEED).random(all_masks.shape, dtype=np.float32)
chance = diagnostics.pixel_metrics(noise, all_masks)
print(f"Random maps: P-AUROC {chance['p_auroc']:.3f}, AU-PRO (FPR <= 0.3) {chance['aupro']:.3f}, "
      f"P-AP {chance['p_ap']:.3f} (share of defect pixels {all_masks.mean():.3f})")

# %% [markdown]
# P-AUROC lands at one half and AU-PRO near 0.15, half its FPR limit, as the equations predict; P-AP falls
# to the share of defect pixels, which is why a pixel AP that looks low may still be far above chance.
#
# ## The curves behind the numbers
#
# Image level first: one ROC and one precision-recall curve per category. The numbers under each panel are
# the metrics, computed from the same exact counts as `metrics.image_auroc` / `metrics.image_ap`; the area
# under the drawn curve is the same number (the tests check this). On the PR panel, "chance" is the share of
# defective images, which is what a detector that guesses gets.

# %%
curves_figure({c: (floor.runs[c].prediction.scores, labels[c]) for c in categories}, kinds=("roc", "pr"),
              title="Image level: one score per test image").show()

# %% [markdown]
# Pixel level: the same two curves over every pixel of the test set, and the PRO curve. Two things stand
# out. The chance level of pixel AP is tiny (defects cover only a small share of the pixels), so every
# false alarm drags precision down. And the ROC curve is judged over the *whole* FPR axis, while AU-PRO only
# looks at the shaded part: an FPR of 0.3 already means that almost a third of the normal surface is flagged.

# %%
curves_figure({c: (maps[c], masks[c]) for c in categories},
              title="Pixel level: every pixel of every test image").show()

# %% [markdown]
# ## Sliding the threshold
#
# A curve is a threshold sweep; here is the sweep itself. The slider moves the threshold so that the pooled
# pixel FPR over the whole test set takes the values in `FPR_STEPS`. The top row shows the anomaly maps,
# the bottom row what the threshold makes of them: **green** defect pixels that are flagged, **red** normal
# pixels that are flagged, **blue** defect pixels that are missed. The colour scale of the maps runs from the
# lowest to the highest threshold of the slider. The dashed line marks where this threshold sits on the
# pooled ROC and PRO curves. Examples: a good image and the smallest, a middle-sized
# and the largest defect of the category where AU-PRO is highest.

# %%
category = floor.table.drop(index="mean")["aupro"].idxmax()
run, areas = floor.runs[category], masks[category].sum(axis=(1, 2))
by_area = np.argsort(np.where(areas > 0, areas, np.inf))[: int(np.count_nonzero(areas))]  # defective only
shown = [int(i) for i in (np.flatnonzero(areas == 0)[0], by_area[0], by_area[len(by_area) // 2], by_area[-1])]
slider_thresholds = diagnostics.thresholds_at_fpr(maps[category], masks[category], FPR_STEPS)
threshold_slider(maps[category], masks[category], shown, slider_thresholds,
                 images=[run.dataset.test[i].image for i in shown],
                 names=[f"{run.dataset.test[i].defect}<br>{areas[i]} px" for i in shown],
                 step_labels=[f"FPR {f:g}" for f in FPR_STEPS], title=category).show()

# %% [markdown]
# ## Why P-AUROC looks good while AU-PRO exposes missed small defects
#
# ### On the real predictions
#
# Fix one threshold, the one that flags 1% of the normal pixels, and look at every defect region separately:
# what share of it is flagged? `diagnostics.region_table` lists them. The size-weighted mean of the overlaps
# is the pixel TPR (what P-AUROC integrates); the plain mean is PRO (what AU-PRO integrates).

# %%
FPR_BUDGET = 0.01
regions = []
for c in categories:
    threshold = diagnostics.thresholds_at_fpr(maps[c], masks[c], [FPR_BUDGET])[0]
    regions.append(diagnostics.region_table(maps[c], masks[c], threshold).assign(category=c))
regions = pd.concat(regions, ignore_index=True)
median_size = regions.groupby("category")["region_pixels"].transform("median")
regions["size"] = np.where(regions["region_pixels"] < median_size, "small", "large")
coverage = regions.groupby("category").apply(
    lambda r: pd.Series({
        "regions": len(r),
        "pixel TPR (size-weighted)": np.average(r["overlap"], weights=r["region_pixels"]),
        "PRO (every region equal)": r["overlap"].mean(),
        "overlap, small regions": r.loc[r["size"] == "small", "overlap"].mean(),
        "overlap, large regions": r.loc[r["size"] == "large", "overlap"].mean(),
    }), include_groups=False)
less = list(coverage.index[coverage["overlap, small regions"] < coverage["overlap, large regions"]])
print(f"small regions covered less than large ones in: {', '.join(less) or 'none'}; "
      f"the other way round in: {', '.join(sorted(set(coverage.index) - set(less))) or 'none'}")
coverage.round(3)

# %% [markdown]
# "Small" and "large" split each category's regions at its median size. Wherever the small regions are
# covered less than the large ones, PRO falls below the pixel TPR at the same threshold, because PRO gives the
# many small regions as much weight as the few large ones. A detector can also do the reverse (a per-pixel
# colour model catches a small, high-contrast spot more easily than a large, faint stain), which pushes PRO
# above the pixel TPR. A split at the median is coarse, though: a few very large regions can carry most of the
# pixel TPR, so read the two numbers in the table, not the split alone. They agree only when coverage does not
# depend on size. The scatter shows every region:
# its size on a log axis and the share of it flagged.

# %%
px.scatter(regions, x="region_pixels", y="overlap", color="category", log_x=True, opacity=0.7,
           labels={"region_pixels": "defect region size (pixels, log)", "overlap": "share of region flagged"},
           title=f"Each defect region at the threshold where pixel FPR = {FPR_BUDGET:g} (PixelGaussian)",
           height=420).show()

# %% [markdown]
# ### A controlled contrast
#
# To separate the effect from everything else a weak detector does wrong, build maps where it is the only
# thing that happens. `diagnostics.size_biased_maps` takes the real ground-truth masks of all categories
# and returns smooth noise plus a clear bump on every defect region of at least `min_region_pixels` pixels;
# smaller regions get nothing. The detector is perfect on the defects it sees and blind to the rest.
#
# If a detector scores missed regions like normal pixels, those pixels win half of their comparisons, so
# P-AUROC is about $1 - \tfrac12 \times$ (share of defect *pixels* missed), while AU-PRO falls roughly with
# the share of *regions* missed. Small regions are many but hold few pixels, hence the gap.

# %%
sizes = metrics.label_regions(all_masks).sizes
contrast = pd.DataFrame([
    {"min_region_pixels": size, "regions seen": np.mean(sizes >= size),
     "defect pixels seen": sizes[sizes >= size].sum() / sizes.sum(),
     **diagnostics.pixel_metrics(diagnostics.size_biased_maps(all_masks, np.random.default_rng(SEED),
                                                              min_region_pixels=size), all_masks)}
    for size in MIN_REGION_SIZES
]).set_index("min_region_pixels")
half = (contrast["regions seen"] - 0.5).abs().idxmin()  # the row that hides about half the regions
row = contrast.loc[half]
print(f"Hiding regions under {half} px hides {1 - row['regions seen']:.0%} of the regions but only "
      f"{1 - row['defect pixels seen']:.0%} of the defect pixels: P-AUROC {row['p_auroc']:.3f}, "
      f"AU-PRO {row['aupro']:.3f} ({contrast.loc[0, 'p_auroc']:.3f} and {contrast.loc[0, 'aupro']:.3f} "
      "when every region is seen)")
summary.label_test_set_thresholds(contrast).round(3)

# %%
px.line(contrast[["regions seen", "defect pixels seen", "p_auroc", "aupro", "p_ap"]], markers=True,
        labels={"value": "share / metric", "variable": ""}, height=420,
        title="A detector that only sees defects of at least this many pixels").show()

# %% [markdown]
# With every region visible both metrics are close to 1. Hide about half of the regions, the small ones, which
# hold a much smaller share of the defect pixels, and P-AUROC still reads like a strong detector while AU-PRO
# drops by far more (the printed line gives the numbers). A high P-AUROC alone says little about small
# defects. The instance metric IAP@90 is harsher still: once more than a tenth of the regions are never
# found, reaching 90% instance recall needs a threshold so low that almost every pixel is flagged, and its
# precision falls to about the share of defect pixels.
#
# ## Normalisation, clamping and ties
#
# Many pipelines rescale maps to [0, 1] before saving or evaluating them: subtract a lower bound, divide by
# the range, clip what falls outside. The bounds come from normal data; we use the maps of
# `REFERENCE_IMAGES` training images (there is no validation split here, and in-sample maps are a little
# lower than on unseen normal images, which is exactly the kind of mismatch that happens in practice).
# Clipping sends everything beyond a bound to the *same* value: ties. A strictly increasing rescaling would
# change no metric at all; ties do, because AUROC counts them one half and a tied block is crossed in one
# step of the curve. `normalisation.normalisation_variants` builds five versions of the same maps; the image
# score stays the maximum of each map.

# %%
rows = []
for c in categories:
    run = floor.runs[c]
    reference = run.detector.predict(list(run.dataset.train)[:REFERENCE_IMAGES]).maps
    for name, variant in normalisation.normalisation_variants(maps[c], reference).items():
        image_scores = normalisation.top_k_mean(variant, 1)
        report = metrics.evaluate(Prediction(scores=image_scores, maps=variant), run.dataset.test)
        rows.append({"category": c, "variant": name,
                     "pixels at lowest value": np.mean(variant == variant.min()),
                     "pixels at highest value": np.mean(variant == variant.max()),
                     "distinct image scores": len(np.unique(image_scores)),
                     **{key: report[key] for key in ("i_auroc", "p_auroc", "aupro", "p_ap")}})
normalised = pd.DataFrame(rows)
normalised.groupby("variant", sort=False).mean(numeric_only=True).round(3)

# %% [markdown]
# That is the mean over the categories; pixel AP per category shows where the ties hurt most:

# %%
variant_order = list(dict.fromkeys(normalised["variant"]))
normalised.pivot(index="category", columns="variant", values="p_ap")[variant_order].round(3)

# %% [markdown]
# What to read from the two tables:
#
# * **min-max, clamped** with the full range of the reference leaves the bottom alone; at the top, the normal
#   test pixels brighter than anything seen in training tie with the defects at 1. In the categories where
#   that happens, P-AP loses a good part of its value and I-AUROC drops a little, with the detector unchanged.
# * **Raising the lower bound** (here to the 99th percentile of the reference pixels, a tempting way to get
#   "clean" maps) sets nearly every pixel to exactly 0. All those pixels, normal and defective, now tie: the
#   ROC curve becomes a straight line from the last distinct point to (1, 1), and P-AUROC and AU-PRO fall
#   sharply although the top of the ranking is untouched.
# * **Per-image min-max** makes every map's maximum 1, so every image gets the same score and I-AUROC is
#   exactly 0.5 (one distinct image score); P-AP collapses too, because each good image now has pixels at 1.
# * **8-bit storage** of a clamped map merges nearby scores; the effect is small but not zero.
#
# When comparing methods, compute the metrics on the raw scores, or at least with the same normalisation
# fitted on the same normal data.
#
# ## One number per image: the maximum or the mean of the top k
#
# Most methods reduce a map to an image score by taking its maximum. The maximum reacts to a single pixel:
# one noisy spike in a good image is enough for a false alarm. The mean of the k largest values smooths
# such spikes away, but it also dilutes a defect smaller than k pixels. `normalisation.top_k_sweep` measures
# I-AUROC for several k, for all images and separately for images whose defect is smaller or larger than the
# category's median defect area (each group against all good images).

# %%
sweeps = []
for c in categories:
    areas_c = masks[c].sum(axis=(1, 2))
    median_area = int(np.median(areas_c[areas_c > 0]))
    sweep = normalisation.top_k_sweep(maps[c], labels[c], TOP_K, defect_pixels=areas_c,
                                      small_below=median_area)
    sweeps.append(sweep.assign(category=c))
sweeps = pd.concat(sweeps, ignore_index=True)
top_k_table = sweeps.pivot_table(index="k", columns="images", values="i_auroc", aggfunc="mean")
top_k_table.round(3)

# %%
px.line(sweeps[sweeps["images"] == "all"], x="k", y="i_auroc", color="category", log_x=True, markers=True,
        labels={"k": "k (pixels averaged, log)", "i_auroc": "image AUROC"}, height=400,
        title="Image score = mean of the k largest map values").show()

# %% [markdown]
# The table gives the mean over categories, the chart each category. The best k differs between categories,
# and no choice suits every defect size: as k grows, the images with small defects lose ground first, because
# their few bright pixels are averaged with background, while images with large defects can gain a little at
# moderate k, as isolated bright pixels of good images are averaged away, before they too fade. Since this
# choice changes I-AUROC on the same maps, a paper's aggregation rule is part of its result.
#
# ## IoU and instance metrics: a small defect against a large one
#
# A last constructed pair. The same detector (noise plus a blurred bump on the defect,
# `size_biased_maps(..., blur=2)`) looks at a 6×6 and at a 36×36 square defect, each with the same eight good
# images. Nothing differs but the defect size. IoU is, as everywhere in this chapter, the best IoU over all
# thresholds, picked on these very maps, so a low IoU here cannot be blamed on a badly chosen threshold.

# %%
SIDE, GOOD_IMAGES = 128, 8
cases = {}
for name, width in (("small defect (6x6)", 6), ("large defect (36x36)", 36)):
    case_masks = np.zeros((1 + GOOD_IMAGES, SIDE, SIDE), dtype=bool)
    start = (SIDE - width) // 2
    case_masks[0, start:start + width, start:start + width] = True
    case_maps = diagnostics.size_biased_maps(case_masks, np.random.default_rng(SEED), blur=2.0)
    cases[name] = (case_maps, case_masks)
case_labels = np.array([1] + [0] * GOOD_IMAGES)
summary.label_test_set_thresholds(pd.DataFrame({
    name: {"i_auroc": metrics.image_auroc(normalisation.top_k_mean(m, 1), case_labels),
           **diagnostics.pixel_metrics(m, k)} for name, (m, k) in cases.items()}).T).round(3)

# %% [markdown]
# Image AUROC, P-AUROC and AU-PRO barely tell the two apart: the small defect is ranked above almost every
# normal pixel. IoU, P-AP and the instance metrics tell a different story. The blur spreads the small defect's
# signal over an area several times its own, so any threshold that flags most of it also flags a ring of
# normal pixels around it, and to flag more than half of it (the instance rule) the threshold has to drop to
# where noise in the good images is flagged too. Slide the threshold and watch the small square:

# %%
small_maps, small_masks = cases["small defect (6x6)"]
large_maps, large_masks = cases["large defect (36x36)"]
pair_maps = np.concatenate([small_maps, large_maps[:1]])  # the good images are the same in both cases
pair_masks = np.concatenate([small_masks, large_masks[:1]])
threshold_slider(pair_maps, pair_masks, [1, 0, len(pair_maps) - 1],
                 diagnostics.thresholds_at_fpr(pair_maps, pair_masks, FPR_STEPS),
                 names=["good", "small defect", "large defect"],
                 step_labels=[f"FPR {f:g}" for f in FPR_STEPS], title="constructed maps").show()

# %% [markdown]
# ## How fast the metrics are
#
# All pixel metrics share one exact tally of the scores (`uiad_lite/metrics/tally.py`), so they stay
# practical at benchmark size. Here is P-AUROC over every test pixel of this run, timed against
# scikit-learn's `roc_auc_score` on the same pixels:

# %%
pooled_maps = np.concatenate([maps[c] for c in categories])
start = time.process_time()
ours = metrics.pixel_auroc(pooled_maps, all_masks)
ours_s = time.process_time() - start
start = time.process_time()
theirs = roc_auc_score(all_masks.ravel(), pooled_maps.ravel())
theirs_s = time.process_time() - start
ratio = theirs_s / max(ours_s, 1e-9)
print(f"P-AUROC over {all_masks.size:,} pixels: uiad-lite {ours_s:.2f} s, scikit-learn {theirs_s:.2f} s "
      f"of CPU time ({ratio:.1f}x {'faster' if ratio >= 1 else 'slower'} here); "
      f"values differ by {abs(ours - theirs):.1e}")

# %% [markdown]
# The printed line is this run's measurement, at this run's size. For the size of the MVTec AD test set
# (1,700 maps of 256×256) run `python benchmarks/metrics_bench.py --sizes 1700x256x256`; `--device cuda`
# runs the sorting on a GPU.
#
# ## Published conventions
#
# The survey's Table 3 gives definitions, not scores, so there are no published numbers to set beside ours
# in this chapter; the method chapters do that. What is published, and what our numbers follow, are the
# conventions: AU-PRO is integrated up to an FPR of 0.3 and normalised, regions are connected components of
# the ground truth {cite}`bergmann2021mvteca`; an instance is a connected defect region, found when more than
# half of its pixels are flagged, and IAP@k is usually reported at k = 90% {cite}`zhang2023destseg`. Papers
# that deviate from them (another FPR limit, 4-connected regions, per-image instead of pooled pixel AUROC)
# produce numbers that cannot be compared with these.
#
# ## Try this
#
# * Set `FPR_BUDGET = 0.05` in the region experiment: every region is covered more; the table shows whether
#   the gap between small and large regions, and so between PRO and pixel TPR, narrows.
# * Call `metrics.aupro(maps, masks, fpr_limit=0.05)` on the PixelGaussian maps: with a stricter limit only
#   the very top of the ranking counts, and the values drop.
# * In the small-versus-large experiment, change `blur=2.0` to `blur=1.0`: the halo around the small defect
#   shrinks and its IoU and IAP recover, while P-AUROC hardly moves.
#
# ## References
#
# The survey {cite}`lin2024survey` (Table 3, Section 2.3); MVTec AD and the PRO metric
# {cite}`bergmann2021mvteca`; DeSTSeg and the instance metrics {cite}`zhang2023destseg`.
