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
# # Memory banks: remember what normal looks like, measure the distance to it
#
# A network trained on ImageNet has never seen a scratched washer, yet its intermediate feature maps
# already describe every small patch of an image as a vector: edges, texture, colour, a little context.
# Memory-bank methods take those vectors as they are. From the defect-free training images they store a
# summary of every normal patch, and at inspection time each patch of a new image is compared with that
# summary: a patch far from everything normal is anomalous, and the map of those distances shows where.
# There is no training of the backbone and usually no training at all, which is why these methods are
# the first strong baseline to try. This chapter runs three of them from the survey's Table 4
# {cite}`lin2024survey`: PaDiM {cite}`defard2021padim`, PatchCore {cite}`roth2022total` and CFA
# {cite}`lee2022cfa`, then opens PatchCore's memory bank to see what its coreset keeps.

# %% tags=["parameters"]
DATASET = "synthetic"  # an RGB dataset name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of RGB category names (None: every RGB category of DATASET)
QUICK = True  # True: about two minutes on two CPU cores; False: the papers' settings (GPU, real data)
DEVICE = "auto"  # "auto", "cpu" or "cuda"
SEED = 0

# %%
import inspect

import numpy as np
import pandas as pd
import torch

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, methods, metrics, survey
from uiad_lite.experiment import run_detector
from uiad_lite.features import resolve_device
from uiad_lite.methods.memory_bank import coupled_hypersphere_loss
from uiad_lite.methods.memory_bank.cfa import squared_distances
from uiad_lite.plots.maps import heatmap_grid
from uiad_lite.plots.memory_bank import (
    coreset_projection,
    coreset_tradeoff,
    methods_bar_chart,
    patches_under_masks,
)
from uiad_lite.plots.survey import highlights_table
from uiad_lite.sweeps import coverage_table, fitted_state_mb, patchcore_sweep
from uiad_lite.widgets import explore_maps

device = str(resolve_device(DEVICE))
categories = CATEGORIES or data.categories(DATASET, root=DATA_ROOT, setting="rgb")

# The methods' settings live in the package (uiad_lite/methods/registry.py): preset "quick" runs on a CPU
# (offline EfficientNet-Lite0 weights at 160 px); "paper" is WideResNet-50-2 with torchvision's ImageNet
# weights (timm tag "tv_in1k"; they must be in the local torch or Hugging Face cache) at 224 px.
PRESET = "quick" if QUICK else "paper"
catalogue = methods.catalogue()
chapter_methods = catalogue[catalogue["chapter"] == "03_memory_bank"]
# {"PaDiM": "padim", "PatchCore": "patchcore", "CFA": "cfa"}: the survey's names and the package's
METHODS = dict(zip(chapter_methods["survey_method"], chapter_methods["name"], strict=True))
OPTIONS = {name: {} for name in METHODS}  # preset overrides, e.g. OPTIONS["PatchCore"] = {"layers": (1, 2)}
BACKBONE = methods.preset_settings("patchcore", PRESET)["backbone"]
IMAGE_SIZE = methods.preset_settings("patchcore", PRESET)["image_size"]
# The data: size="quick" shrinks a real dataset for the CPU (256 px, at most 100 training images) and picks
# the 224 px synthetic variant; otherwise real data are read as they are and, as both papers evaluate
# MVTec AD, resized to 256 and centre-cropped to 224, ground truth alike.
SIZE = "quick" if QUICK else "full"
LOAD = {} if QUICK or DATASET == "synthetic" else dict(image_size=256, center_crop=224)
SWEEP_CATEGORIES = categories[:1] if QUICK else categories
SWEEP_RATIOS = [0.01, 0.03, 0.1, 1.0] if QUICK else [0.001, 0.01, 0.1, 0.25, 1.0]
if QUICK and device == "cpu":
    # Most steps here are many small tensor operations (greedy coreset picks, CFA's batches): on a small
    # or shared CPU, one thread avoids the synchronisation cost of splitting each of them.
    torch.set_num_threads(1)
print(f"{DATASET}: {categories} on {device}; preset {PRESET!r}: backbone {BACKBONE} at {IMAGE_SIZE} px")

# %% [markdown]
# ## Where this sits
#
# The survey files memory banks under *feature embedding* methods, next to teacher-student networks,
# one-class classification and distribution maps (Sec. 3.1.4 and Table 4 of {cite}`lin2024survey`).
# Its Table 4 lists nine RGB memory-bank methods; the idea then travelled to point clouds and to
# RGB+3D data (Table 7), which the planned point-cloud and multimodal chapters pick up. The rows below
# come from `uiad_lite.survey`; the one-line summaries are ours.

# %%
table4 = survey.methods(table=4, subfamily="memory bank")
later = survey.methods(table=7, subfamily="memory bank")
print(f"Table 4: {len(table4)} RGB methods; Table 7: {len(later)} more for 3D and RGB+3D "
      f"({', '.join(later['method'])})")
highlights_table(table4)

# %% [markdown]
# ## The idea
#
# All three methods cut the image into the cells of a feature grid. With $\phi_{ij}(x) \in \mathbb{R}^d$
# the feature vector of cell $(i, j)$ (several backbone stages resized to one grid and concatenated),
# they differ in what they keep of the $N$ normal training images and how they measure a distance to it.
#
# **PaDiM** keeps a Gaussian per cell. For every position it estimates a mean and a covariance over the
# training images, $\mu_{ij} = \frac1N\sum_k \phi_{ij}(x_k)$ and
# $\Sigma_{ij} = \frac1{N-1}\sum_k (\phi_{ij}(x_k)-\mu_{ij})(\phi_{ij}(x_k)-\mu_{ij})^\top + \epsilon I$,
# and scores a test cell by its Mahalanobis distance
#
# $$s_{ij}(x) = \sqrt{(\phi_{ij}(x)-\mu_{ij})^\top\,\Sigma_{ij}^{-1}\,(\phi_{ij}(x)-\mu_{ij})}.$$
#
# Cheap to query (one small matrix product per cell) and the covariance captures how channels vary
# together; but position $(i,j)$ must show the same part of the object in every image.
#
# **PatchCore** keeps the patches themselves, all of them, in one bank
# $\mathcal M = \bigcup_k \{\phi_{ij}(x_k)\}$, regardless of position. A test patch is as anomalous as it
# is far from its nearest neighbour in the bank, $\min_{m\in\mathcal M}\lVert\phi_{ij}(x) - m\rVert_2$, and
# the image score is that of the worst patch. The paper re-weights the worst patch's distance by how
# isolated its neighbour is inside the bank (Eq. 7 of {cite}`roth2022total`); the authors' released code
# does not: it searches the bank with FAISS `IndexFlatL2`, which returns *squared* distances, and uses
# them as they are, $s_{ij}(x) = \min_{m}\lVert\phi_{ij}(x) - m\rVert_2^2$ for the map and
# $\max_{ij} s_{ij}(x)$ for the image. Storing every patch is wasteful: a hundred 224 px images give
# 78 400 of them, mostly near-duplicates. PatchCore therefore keeps a *coreset*
# $\mathcal M_C \subset \mathcal M$ chosen so that no normal patch is far from it,
#
# $$\mathcal M_C^{*} = \arg\min_{\mathcal M_C,\ |\mathcal M_C| = r|\mathcal M|}\
#   \max_{m\in\mathcal M}\ \min_{n\in\mathcal M_C} \lVert m - n\rVert_2,$$
#
# solved approximately by the greedy k-center rule: start somewhere, then repeatedly add the patch that is
# farthest from everything chosen so far. The released code runs it on a random 128-dimensional linear
# projection of the patches and starts from the patch farthest on average from ten random anchors
# ("approximate greedy"); anomalib starts from a random patch. The ratio $r$ (1 % to 25 % in the paper)
# trades memory and search time against accuracy.
#
# **CFA** keeps one centroid per cell as well, but first *adapts* the features: a small trainable
# patch descriptor $\psi$ (a 1×1 convolution that also sees the cell's coordinates) maps each feature
# to a space where normal patches are pulled inside a tiny sphere of radius $r$ around their $K$ nearest
# centroids $c^k$ and pushed away from the next $J$ centroids by a margin $\alpha$:
#
# $$\begin{aligned}
# \mathcal L = {} & \frac{1}{TK}\sum_{t}\sum_{k=1}^{K}\max\!\big(0,\ \lVert\psi(p_t)-c^k\rVert^2 - r^2\big)\\
#   & + \frac{1}{TJ}\sum_t\sum_{j=K+1}^{K+J}\max\!\big(0,\ r^2 - \lVert\psi(p_t)-c^j\rVert^2 - \alpha\big).
# \end{aligned}$$
#
# The point is to correct the ImageNet bias of the features for the product at hand, while the memory
# stays as small as the grid. It is the only method of the three with a training loop. In the authors'
# code the radius is not a constant: $r$ is a trainable parameter that starts at $10^{-5}$ and is
# optimised with the descriptor (and the loss is divided by $\nu = 10^{-3}$). While $r^2 < \alpha = 0.1$
# the repulsion term is zero for every distance, since $r^2 - \lVert\cdot\rVert^2 - \alpha < 0$; as the
# attraction term pushes $r$ up, repulsion can switch on for hard negatives closer than $r^2 - \alpha$.
# That is the default here (`learn_radius=True`); anomalib and `learn_radius=False` keep $r$ fixed at
# $10^{-5}$, and then CFA trains on attraction alone. Below, the run shows how far $r$ grew.
#
# In all three, the cell scores are upsampled to the image, smoothed with a Gaussian ($\sigma = 4$ px),
# and the image score is the map's maximum (PatchCore: its worst patch before smoothing).

# %% [markdown]
# ## The methods in code
#
# The three detectors live in `uiad_lite/methods/memory_bank/`, one file each (`padim.py`, `patchcore.py`,
# `cfa.py`), with the pieces they share in named files: `patch_detector.py` (backbone, patch features,
# maps), `coreset.py` (the greedy and approximate-greedy coresets) and `nearest_neighbours.py`; the frozen
# backbones and patch features are in `uiad_lite/features/`. `uiad_lite.methods.create(name, preset=...)`
# builds one by name. Their constructor arguments carry the defaults of the authors' released code; the
# presets then set the backbone and what depends on it (in quick mode PaDiM keeps 100 channels, the
# papers' value for ResNet-18; 550 for WideResNet-50). Every option and the preset in use:

# %%
for label, name in METHODS.items():
    print(f"{label}{inspect.signature(methods.detector_class(name).__init__)}".replace("self, ", ""))
    print(f"    preset {PRESET!r}: {methods.preset_settings(name, PRESET)}\n")

# %% [markdown]
# ## Run it
#
# One detector per method and category, fitted on the normal training images and evaluated on the test
# images (`uiad_lite.experiment.run_detector`; every row is also stored in the results registry).
#
# What quick mode changes: the *data* (`size="quick"`: on a real dataset, images resized to 256×256 and at
# most 100 evenly spaced training images; on the synthetic benchmark its 224 px variant) and the *methods*
# (`preset="quick"`: the offline EfficientNet-Lite0 backbone at 160 px instead of WideResNet-50 at 224 px,
# PatchCore's embedding sized to the small backbone, CFA trained for 10 epochs instead of 30; the settings
# printed above). Without it (`QUICK=False`) a real dataset is read as it is on disk and evaluated as the
# papers do, resized to 256 and centre-cropped to 224.

# %%
experiments = {}
for label, name in METHODS.items():

    def make_detector(name=name, label=label):
        return methods.create(name, preset=PRESET, device=device, seed=SEED, progress=False, **OPTIONS[label])

    experiments[label] = run_detector(make_detector, chapter="03_memory_bank", method=label, dataset=DATASET,
                                     categories=categories, root=DATA_ROOT, quick=QUICK, seed=SEED,
                                     device=device, backbone=BACKBONE, load_options=LOAD)

# %% [markdown]
# ## Results
#
# Image AUROC (`i_auroc`) asks whether defective images outrank good ones; pixel AUROC (`p_auroc`) and
# AU-PRO (`aupro`, up to a false-positive rate of 0.3) whether the defective pixels light up, AU-PRO giving
# every defect region the same weight however small. Fit time includes feature extraction. `model_mb` is
# what each fitted detector keeps besides the frozen backbone (PaDiM's means and inverse covariances,
# PatchCore's bank, CFA's centroids and descriptor; `uiad_lite.sweeps.fitted_state_mb`). The registry's
# `peak_memory_mb` is something else: how far the process's resident memory rose during the fit (features
# of every training image included), sampled, and a lower bound, since memory freed earlier and reused does
# not show.

# %%
results = pd.concat([experiment.table.reset_index() for experiment in experiments.values()],
                    ignore_index=True)
for name, experiment in experiments.items():
    sizes = {category: fitted_state_mb(run.detector) for category, run in experiment.runs.items()}
    rows = results["method"] == name
    results.loc[rows, "model_mb"] = results.loc[rows, "category"].map(sizes)
    results.loc[rows & (results["category"] == "mean"), "model_mb"] = np.mean(list(sizes.values()))
columns = ["method", "category", "i_auroc", "p_auroc", "aupro", "fit_s", "predict_ms_per_image", "model_mb"]
results[columns].set_index(["method", "category"]).round(3)

# %%
methods_bar_chart(results, title=f"Memory-bank methods on {DATASET} (the menu switches the metric)").show()

# %% [markdown]
# ## Look closer: the maps
#
# The same test images for each method: the first column is a good sample, the others defective ones,
# with the ground truth in the middle row and the anomaly map at the bottom (one colour scale per figure;
# hover for values). Compare how sharply each method outlines the defect and how quiet the good image stays.
# In JupyterLab the cell shows a live explorer instead (`uiad_lite.widgets.explore_maps`): pick a method,
# any test image and a threshold, and see which pixels it flags.

# %%
shown_category = categories[0]
test_samples = experiments["PatchCore"].runs[shown_category].dataset.test
labels = np.array([sample.label for sample in test_samples])
rng = np.random.default_rng(SEED)
shown = np.concatenate([rng.choice(np.flatnonzero(labels == 0), 1, replace=False),
                        rng.choice(np.flatnonzero(labels == 1), 3, replace=False)])
predictions = {name: experiment.runs[shown_category].prediction for name, experiment in experiments.items()}
shown_maps = explore_maps(test_samples, predictions, shown, title=shown_category)

# %% [markdown]
# ### A failure case
#
# Where does PatchCore go wrong? Below, on its weakest category, the good test image it scores highest and
# the defective image it scores lowest. If the first outranks the second, no threshold separates them.

# %%
patchcore_table = experiments["PatchCore"].table.drop(index="mean")
weakest = patchcore_table["i_auroc"].idxmin()
run = experiments["PatchCore"].runs[weakest]
scores = run.prediction.scores
weak_labels = np.array([sample.label for sample in run.dataset.test])
worst_good = int(np.flatnonzero(weak_labels == 0)[np.argmax(scores[weak_labels == 0])])
worst_defect = int(np.flatnonzero(weak_labels == 1)[np.argmin(scores[weak_labels == 1])])
print(f"PatchCore on {weakest}: image AUROC {patchcore_table.loc[weakest, 'i_auroc']:.3f}; "
      f"highest good score {scores[worst_good]:.3g}, lowest defect score {scores[worst_defect]:.3g} "
      f"({run.dataset.test[worst_defect].defect})")
pair = [worst_good, worst_defect]
heatmap_grid([run.dataset.test[i] for i in pair], run.prediction.maps[pair], scores[pair], max_side=64,
             title=f"PatchCore on {weakest}: hardest good image (left), hardest defect (right)").show()

# %% [markdown]
# Two things go wrong on a category like this. The defect can be *faint in feature space*: a thin or
# low-contrast mark changes a patch's features less than the natural variation between normal patches of
# a busy texture, so its nearest normal neighbour is close. And a good image can hold a *rare but normal*
# patch, a configuration the hundred training images happen not to contain, which then looks as unusual
# as a defect. More training images, higher resolution (thin defects cover more cells) and stages that
# see finer detail help with the first; more training images are the only cure for the second.

# %% [markdown]
# ## PatchCore as released, option by option
#
# Paper, released code and anomalib differ in five places, each an option of `PatchCore`
# (`uiad_lite/methods/memory_bank/patchcore.py`); the defaults, and the run above, follow the released
# code. On the weakest category, the table changes one option at a time: the two scoring options re-score
# the bank already fitted above (`with_scoring`), the other three fit a new bank. "concat" is anomalib's
# embedding (3×3 average pooling, concatenated stages); the last row is that embedding with the border
# zeros left out of the 3×3 mean, which is what this package did before.

# %%
released = experiments["PatchCore"].runs[weakest].detector
test = experiments["PatchCore"].runs[weakest].dataset.test
variants = {
    "released code (the defaults)": released,
    "image score: Eq. 7 re-weighting": released.with_scoring(image_score="reweighted"),
    "distance: Euclidean, not squared": released.with_scoring(distance="euclidean"),
}
refits = {
    "coreset: exact greedy from a random start": dict(sampler="greedy"),
    "embedding: concat, padding counted (anomalib)": dict(embedding="concat"),
    "embedding: concat, padding not counted": dict(embedding="concat", count_padding=False),
}
train = experiments["PatchCore"].runs[weakest].dataset.train
for label, options in refits.items():
    variants[label] = methods.create("patchcore", preset=PRESET, device=device, seed=SEED, progress=False,
                                     **OPTIONS["PatchCore"], **options).fit(train)
option_rows = []
for label, detector in variants.items():
    report = metrics.evaluate(detector.predict(test), test)
    option_rows.append({"variant": label, **{key: report[key] for key in ("i_auroc", "p_auroc", "aupro")}})
options_table = pd.DataFrame(option_rows).set_index("variant")
good = [sample for sample in test if sample.label == 0]
for label in list(refits)[1:]:  # where on the grid is a good image's worst patch?
    grid = variants[label].patch_scores(good)
    worst = grid.flatten(1).argmax(dim=1)
    rows, cols = worst // grid.shape[2], worst % grid.shape[2]
    border = (rows == 0) | (cols == 0) | (rows == grid.shape[1] - 1) | (cols == grid.shape[2] - 1)
    options_table.loc[label, "good_worst_on_border"] = float(border.float().mean())
padding_gain = options_table["i_auroc"].iloc[4] - options_table["i_auroc"].iloc[5]
print(f"PatchCore on {weakest}: counting the border zeros in the 3×3 mean changes image AUROC by "
      f"{padding_gain:+.3f} (concat embedding); without them, the worst patch of "
      f"{options_table['good_worst_on_border'].iloc[5]:.0%} of the good test images lies on the grid's edge "
      f"(with them: {options_table['good_worst_on_border'].iloc[4]:.0%}). The released defaults reach "
      f"{options_table['i_auroc'].iloc[0]:.3f}.")
options_table.round(3).astype(object).fillna("–")

# %% [markdown]
# The published PatchCore numbers below were produced with the released code's choices, the defaults here:
# image score = largest patch score, squared distances, approximate-greedy coreset, adaptive-pooling
# embedding with zero-padded 3×3 patches. Eq. 7's re-weighting is in the paper but not in that code. One
# option cannot change image AUROC: squaring is monotone, so the worst patch and the ranking of images stay
# the same (only the maps' shape changes, hence pixel AUROC and AU-PRO may move). The two coresets differ in
# where the greedy search starts and how the patches are projected, so they keep different, equally spread
# picks; the image score, the embedding and the padding change what is compared. The padding matters more
# than it looks: averaging only the real neighbours gives the border cells features that the bank matches
# less well, and the last column shows where a good image's highest patch score then sits.
#
# CFA's radius in this run (first category): the value $r$ reached after training, and whether any hard
# negative came within $r^2 - \alpha$ of a training patch, i.e. whether the repulsion term ever switched on.

# %%
cfa = experiments["CFA"].runs[categories[0]].detector
with torch.no_grad():
    cfa_train = experiments["CFA"].runs[categories[0]].dataset.train
    distances = squared_distances(cfa._adapted(cfa.extractor(cfa_train)), cfa.centroids_)
    total = float(coupled_hypersphere_loss(distances, cfa.num_nearest, cfa.num_hard_negatives, cfa.radius_,
                                           cfa.margin))
    attraction = float(coupled_hypersphere_loss(distances, cfa.num_nearest, 0, cfa.radius_, cfa.margin))
print(f"CFA on {categories[0]}: r went from {cfa.radius:g} to {cfa.radius_:.3f} in {cfa.epochs} epochs "
      f"(r² = {cfa.radius_**2:.3f}, alpha = {cfa.margin}); repulsion on the training patches at the end: "
      f"{total - attraction:.4f}" + (" (still off)" if total - attraction == 0 else " (on)"))

# %% [markdown]
# ## Look closer: the coreset trade-off
#
# How small can the bank be? The sweep extracts the training and test features of a category once,
# runs the greedy search once, and then scores the test set against the first $k$ picks for every ratio:
# greedy selection adds one patch at a time, so a small coreset is exactly a prefix of a large one
# (`uiad_lite/sweeps.py`, `patchcore_sweep`; a test checks every row against a PatchCore fitted at that
# ratio). Predict time is the measured nearest-neighbour search plus the backbone's share, which is the
# same for every ratio; memory is the bank's float32 size. Click a category in the legend to hide it.

# %%
sweeps = {}
for category in SWEEP_CATEGORIES:
    split = data.load(DATASET, root=DATA_ROOT, category=category, size=SIZE, **LOAD)
    sweep_detector = methods.create("patchcore", preset=PRESET, device=device, seed=SEED, progress=False,
                                    **OPTIONS["PatchCore"])
    sweeps[category] = patchcore_sweep(sweep_detector, split.train, split.test, SWEEP_RATIOS)
pd.concat({category: sweep.table for category, sweep in sweeps.items()}, names=["category"]).round(4)

# %%
coreset_tradeoff({category: sweep.table for category, sweep in sweeps.items()}).show()

# %% [markdown]
# Read the panels from right to left. Memory and search time shrink in proportion to the bank, while
# the accuracy curves stay nearly flat over a wide range: that is the paper's case for keeping 1 % to
# 10 % of the patches. Where the curves do move, a bigger bank usually buys a slightly finer localisation
# (AU-PRO) rather than better image-level detection. At some small ratio the coreset starts to miss the
# rarer normal patches and good images begin to raise false alarms; add smaller ratios to find that point
# for your data.
#
# ### What the coreset keeps
#
# The coreset's promise is that every normal patch has a close stand-in. The table measures it in the
# full feature space, for 5 000 normal patches drawn at random: the distance to the nearest member of the
# greedy coreset and of a uniformly random subset of the same size, worst case (`_max`, the quantity the
# greedy rule minimises) and on average (`_mean`). Random sampling follows the density: it does well on
# average but leaves the rare patches far from any stand-in, and those are exactly the patches that would
# otherwise raise false alarms. The greedy coreset keeps the worst case small.

# %%
projected_category = SWEEP_CATEGORIES[0]
sweep = sweeps[projected_category]
coverage_table(sweep.bank, [ratio for ratio in SWEEP_RATIOS if ratio < 1], seed=SEED).round(3)

# %% [markdown]
# The same bank on its first two principal components (grey: a random sample of all normal patches).
# Orange: the greedy coreset; the slider changes its size. Click "random subset" in the legend to overlay
# the random subset of the same size. Two dimensions hide most of the story: the greedy rule spreads its
# picks in all dimensions of the features, so a crowd of orange points here can be well spread in the full
# space. Red crosses are test patches inside defects: those outside the grey cloud are easy; those inside
# it may still be far from every normal patch along directions this view does not show.

# %%
split = data.load(DATASET, root=DATA_ROOT, category=projected_category, size=SIZE, **LOAD)
defective = [i for i, sample in enumerate(split.test) if sample.label == 1]
defect_masks = np.stack([split.test[i].mask for i in defective])
defect_patches = patches_under_masks(sweep.test_features[defective], defect_masks)
projection_ratios = [ratio for ratio in SWEEP_RATIOS if ratio < 1]
title = f"PatchCore memory bank of {projected_category}, first two principal components"
coreset_projection(sweep.bank.patches, sweep.bank.order, projection_ratios, anomalous=defect_patches,
                   seed=SEED, title=title).show()

# %% [markdown]
# ## Published numbers
#
# The papers' MVTec AD averages over its 15 categories, beside the mean of our run. These are
# **published** figures, copied from the papers, not computed here: PaDiM with WideResNet-50 and 550 random
# channels {cite}`defard2021padim` (the same numbers appear in Tables 1 and 2 of {cite}`roth2022total`);
# PatchCore with WideResNet-50 layers 2+3 at 224 px and three coreset ratios, image AUROC from Table 1 and
# pixel AUROC / PRO from Table 2 of {cite}`roth2022total` (the choices of the authors' released code, this
# package's defaults: maximum squared patch distance, approximate-greedy coreset, adaptive pooling to
# 1024 dimensions; not Eq. 7); CFA with WideResNet-50 as stated in the abstract of {cite}`lee2022cfa`
# (trained with a learned radius; no PRO figure quoted there). A dash means the source gives no number.

# %%
published = pd.DataFrame(
    [
        ("PaDiM (WRN50-Rd550)", 0.953, 0.975, 0.921),
        ("PatchCore-25%", 0.991, 0.981, 0.934),
        ("PatchCore-10%", 0.990, 0.981, 0.935),
        ("PatchCore-1%", 0.990, 0.980, 0.931),
        ("CFA (WRN50)", 0.995, 0.985, np.nan),
    ],
    columns=["method", "i_auroc", "p_auroc", "aupro"],
).assign(source="published: MVTec AD", setting="wide_resnet50_2, 224 px")
ours = results[results["category"] == "mean"][["method", "i_auroc", "p_auroc", "aupro"]].assign(
    source=f"ours: {DATASET}, {'quick' if QUICK else 'full'}", setting=f"{BACKBONE}, {IMAGE_SIZE} px")
comparison = pd.concat([published, ours], ignore_index=True).set_index(["source", "method", "setting"])
comparison.round(3).astype(object).fillna("–")

# %% [markdown]
# Ours are not the same experiment: a different dataset (the synthetic benchmark has its own textures and
# defects, and fewer, smaller test images), and in quick mode a much smaller backbone (EfficientNet-Lite0
# instead of WideResNet-50) at 160 px instead of 224, and CFA trained for a third of its epochs. CFA in
# particular depends on the adapted features: with few epochs on a small backbone, its per-position
# centroids (means over the training images, which on a stochastic texture look alike at every position)
# separate normal from defective patches less well than PatchCore's coreset of individual patches. Run
# with `QUICK=False` on MVTec AD (`DATA_ROOT`) with the WideResNet-50 weights to compare like with like.
#
# Read the published CFA figure with its protocol in mind: the authors' training script
# (`trainer_cfa.py` in their public code) evaluates the test set after every one of the 30 epochs and
# reports, per category, the best image AUROC, the best pixel AUROC and the best PRO, each at its own
# epoch. That is model selection on the test set, so the number is an upper bound of what one trained
# model achieves. We train for a fixed number of epochs and report that one model.
#
# ## Try this
#
# * **Layers.** Set `OPTIONS["PatchCore"] = {"layers": (1, 2)}` (finer, more local features) or `(3, 4)`
#   (coarser, more semantic). Finer stages sharpen the maps of small defects but react to every grain of
#   the texture; the deepest stage blurs localisation and, as PatchCore's authors argue
#   {cite}`roth2022total`, leans towards what matters for ImageNet classes rather than for defects.
# * **Coreset ratio.** Set `OPTIONS["PatchCore"] = {"coreset_ratio": 0.01}`: fit and prediction get faster
#   (fewer greedy picks, a smaller bank to search); watch whether the image AUROC of the textures moves.
#   Add `0.001` to `SWEEP_RATIOS` to look for the point where accuracy finally breaks.
# * **Backbone and resolution.** With `QUICK=False` and torchvision's `wide_resnet50_2` weights in the local
#   cache, every method switches to the papers' backbone at 224 px (add `"backbone": "wide_resnet50_2"` to a
#   method's `OPTIONS` for timm's own, differently trained weights, which anomalib loads); expect much slower
#   fits (PaDiM starts from
#   1 792 channels per cell before its random reduction to 550) and better separation on hard textures.
#   Keeping the small backbone but passing `"image_size": 224` roughly doubles the run time and gives thin
#   defects more grid cells to show up in.
# * **PaDiM's alignment assumption.** Rotate the test images of an object category by a few degrees
#   (`scipy.ndimage.rotate(sample.image, 5, reshape=False)`, and the mask with `order=0`) and predict again
#   with the fitted PaDiM and PatchCore: per-position Gaussians expect every part at its usual place, a
#   position-free bank does not, so expect PaDiM to lose more.
#
# ## References
#
# The works cited above are listed, with full details, in the book's bibliography.
