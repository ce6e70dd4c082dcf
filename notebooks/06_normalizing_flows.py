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
# # Normalizing flows: an exact likelihood for every feature
#
# Memory banks (chapter 03) say how *far* a patch is from normal ones. A normalizing flow says how
# *likely* it is: it learns an invertible map from the features of normal images to a standard Gaussian,
# and by the change-of-variables formula that map gives the exact density of any feature vector. A defect
# produces features the flow has never had to place, they land far out in the Gaussian's tails, and their
# log-likelihood is low. This chapter builds the flow from its parts (coupling layers, written for this
# package and checked against autograd), then runs three methods from the survey's Table 4
# {cite}`lin2024survey`: DifferNet {cite}`rudolph2021same`, which scores whole images,
# CFlow-AD {cite}`gudovskiy2022cflow` and FastFlow {cite}`yu2021fastflow`, which score every position.

# %% tags=["parameters"]
DATASET = "synthetic"  # an RGB dataset name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of RGB category names (None: every RGB category; the first two in quick mode)
QUICK = True  # True: about 90 s on two CPU cores; False: the papers' settings (GPU, real data)
DEVICE = "auto"  # "auto", "cpu" or "cuda"
SEED = 0

# %%
import inspect
import time

import numpy as np
import pandas as pd
import torch

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, methods, metrics, survey
from uiad_lite.experiment import run_detector
from uiad_lite.features import resolve_device
from uiad_lite.methods.flows.toy import fit_toy_flow, two_moons
from uiad_lite.plots.flows import change_of_variables, likelihood_maps, log_likelihood_histogram
from uiad_lite.plots.memory_bank import methods_bar_chart
from uiad_lite.plots.survey import highlights_table

started = time.perf_counter()
device = str(resolve_device(DEVICE))
found = data.categories(DATASET, root=DATA_ROOT, setting="rgb")
categories = CATEGORIES or (found[:2] if QUICK else found)
PRESET = "quick" if QUICK else "paper"
catalogue = methods.catalogue()
chapter_methods = catalogue[catalogue["chapter"] == "06_normalizing_flows"]
# {"DifferNet": "differnet", "CFLOW-AD": "cflow", "FastFlow": "fastflow"}: the survey's names, the package's
METHODS = dict(zip(chapter_methods["survey_method"], chapter_methods["name"], strict=True))
# Preset overrides. Quick mode trains for fewer epochs than the "quick" preset (which the benchmark script
# uses) so that the whole chapter stays near 90 s on two cores; set OPTIONS = {name: {} ...} for the preset.
OPTIONS = {name: {} for name in METHODS}
if QUICK:
    OPTIONS.update(
        {
            # measured once outside this notebook (2026-12-02, two idle cores), FastFlow on brick / grass,
            # image AUROC (AU-PRO): 4 epochs 1.000 / 0.970 (0.829 / 0.767), 8 epochs 1.000 / 0.988
            # (0.845 / 0.802)
            "FastFlow": {"epochs": 4},
            "CFLOW-AD": {"epochs": 1},
            # measured the same way, DifferNet on brick / grass, image AUROC: 10 epochs 0.916 / 0.890,
            # 15 epochs 0.906 / 0.866, 30 epochs 0.884 / 0.844 (fewer epochs score higher here)
            "DifferNet": {"epochs": 10, "train_transforms": 2, "test_transforms": 2},
        }
    )
BACKBONE = methods.preset_settings("fastflow", PRESET)["backbone"]
SIZE = "quick" if QUICK else "full"
LOAD = {} if QUICK or DATASET == "synthetic" else dict(image_size=256)
if QUICK and device == "cpu":
    # two threads: on two idle cores the chapter once ran in 124 s with two, 138 s with one (DifferNet's
    # gradient maps and the backbone's convolutions gain most); on a CPU other programs keep busy, use one
    torch.set_num_threads(min(2, torch.get_num_threads()))
print(
    f"{DATASET}: {categories} (RGB categories found: {found}) on {device}; "
    f"preset {PRESET!r}, backbone {BACKBONE}"
)

# %% [markdown]
# ## Where this sits
#
# The survey files flows under *feature embedding* methods, sub-family "distribution map" (Sec. 3.1.4 and
# Table 4 of {cite}`lin2024survey`): methods that model the distribution of pretrained features
# explicitly. Most rows of that sub-family are normalizing flows; the rows below come from
# `uiad_lite.survey` (the one-line summaries are ours).

# %%
distribution_maps = survey.methods(table=4, subfamily="distribution map")
highlights_table(distribution_maps)

# %% [markdown]
# ## The idea
#
# A flow is an invertible, differentiable map $f$ from a feature $x \in \mathbb{R}^D$ to a latent
# $z = f(x)$ that should look like a sample of $\mathcal N(0, I)$. Because $f$ is invertible, the density
# of $x$ follows exactly from that of $z$ (change of variables):
#
# $$\log p_X(x) = \log \mathcal N\big(f(x); 0, I\big) + \log\left|\det \frac{\partial f}{\partial x}\right|
#   = -\tfrac12\lVert f(x)\rVert^2 - \tfrac D2 \log 2\pi + \log\left|\det J_f(x)\right|.$$
#
# Training maximises this over the normal features; testing reads it off. The whole trick is a map that
# is expressive yet has a cheap Jacobian determinant. The **affine coupling layer** splits $x$ into halves
# $(x_1, x_2)$, leaves $x_1$ alone and transforms $x_2$ with a scale and shift computed from $x_1$ by any
# network (the *subnet*):
#
# $$y_1 = x_1,\qquad y_2 = x_2 \odot e^{s(x_1)} + t(x_1),\qquad \log|\det J| = \textstyle\sum_i s_i(x_1).$$
#
# The Jacobian is triangular, so its log-determinant is just the sum of the scales, and the inverse is
# $x_2 = (y_2 - t(y_1))\,e^{-s(y_1)}$. Stacking couplings with fixed permutations in between (so every
# dimension gets transformed) and per-channel affine layers (*actnorm*) gives a deep flow. The released
# CFlow and FastFlow code use FrEIA's `AllInOneBlock`, which *soft-clamps* the scales,
# $s = \alpha \tanh(\cdot)$ with $\alpha \approx 2$, so no single layer can blow a value up; DifferNet
# clamps with $\alpha\,\tfrac{2}{\pi}\arctan(\cdot/\alpha)$. The package's own layers
# (`uiad_lite/methods/flows/coupling.py`) reproduce that behaviour; their tests invert them exactly and
# compare their log-determinant with the one autograd computes from the full Jacobian.
#
# The three methods put the flow on different things:
#
# * **DifferNet** — one vector per *image*: backbone features averaged over the grid at three image scales.
#   The score is the negative log-likelihood averaged over several rotations of the test image (the
#   released code uses the mean of $z^2$); localisation is the gradient of that likelihood with respect
#   to the pixels.
# * **CFlow-AD** — one vector per *position* ("fibre") of each backbone stage, with a conditional flow
#   whose subnets also see a 128-dimensional sinusoidal encoding of the position. Each stage's
#   per-position log-likelihoods are turned into $\exp(\log p - \max \log p)$, upsampled and summed over
#   stages; the map is the maximum of that sum minus the sum.
# * **FastFlow** — the whole *feature map* of each stage goes through a 2D flow whose subnets are
#   convolutions (alternately 3×3 and 1×1), so each position's density sees its neighbours. The map is
#   the mean over stages of $-\exp(-\tfrac12 \overline{z^2})$, $\overline{z^2}$ the mean over channels.

# %% [markdown]
# ### Change of variables in one picture
#
# Below, the package's coupling flow is fitted to a 2-D toy density (two moons). Left: the data and the
# density the flow assigns, $\log p(x)$; right: the same points after the flow, $z = f(x)$, against the
# circles of radius 1, 2 and 3 of the standard Gaussian. Move the slider through training: at step 0 the
# flow is the identity and the moons sit where they are; by the end the flow has bent them into a round
# blob near the origin, and, by the formula above, the density on the left is high exactly on the moons.
# A point between the moons would be sent far out in $z$: that is what an anomaly looks like to a flow.

# %%
toy_points = two_moons(600, seed=SEED)
toy = fit_toy_flow(
    toy_points,
    steps=400 if QUICK else 1500,
    snapshots=(0, 20, 80, 400) if QUICK else (0, 50, 200, 1500),
    seed=SEED,
)
change_of_variables(toy_points, toy, title="Coupling flow on two moons,").show()

# %% [markdown]
# ## The methods in code
#
# `uiad_lite/methods/flows/`: `coupling.py` (the layers), `differnet.py`, `cflow.py`, `fastflow.py`, and
# `flow_detector.py` (what they share: the frozen backbone whose stage outputs go through the feature
# cache, so every training epoch reads features from memory instead of re-running the backbone).
# The constructors carry the released defaults; the presets set backbone, image size and epochs:

# %%
for label, name in METHODS.items():
    print(f"{label}{inspect.signature(methods.detector_class(name).__init__)}".replace("self, ", ""))
    print(
        f"    preset {PRESET!r}: {methods.preset_settings(name, PRESET)}; "
        f"chapter overrides: {OPTIONS[label]}\n"
    )

# %% [markdown]
# ## Run it
#
# One detector per method and category, fitted on the normal training images and evaluated on the test
# images by `uiad_lite.experiment.run_detector` (each row also goes to the results registry). Quick mode:
# the first two RGB categories, the offline EfficientNet-Lite0 at 224 px (stages of stride 8 and 16),
# and the epochs printed above.

# %%
experiments = {}
for label, name in METHODS.items():

    def make_detector(name=name, label=label):
        return methods.create(name, preset=PRESET, device=device, seed=SEED, progress=False, **OPTIONS[label])

    experiments[label] = run_detector(
        make_detector,
        chapter="06_normalizing_flows",
        method=label,
        dataset=DATASET,
        categories=categories,
        root=DATA_ROOT,
        quick=QUICK,
        seed=SEED,
        device=device,
        backbone=BACKBONE,
        load_options=LOAD,
    )

# %% [markdown]
# ## Results
#
# Image AUROC (`i_auroc`), pixel AUROC (`p_auroc`) and AU-PRO (`aupro`, up to a false-positive rate of
# 0.3); fit time includes feature extraction; predict time is per test image.

# %%
results = pd.concat([e.table.reset_index() for e in experiments.values()], ignore_index=True)
columns = ["method", "category", "i_auroc", "p_auroc", "aupro", "fit_s", "predict_ms_per_image"]
results[columns].set_index(["method", "category"]).round(3)

# %%
methods_bar_chart(
    results[results["category"] != "mean"],
    title=f"Normalizing flows on {DATASET} (the menu switches the metric)",
).show()
means = results[results["category"] == "mean"].set_index("method")
best = means["i_auroc"].idxmax()
print(
    f"Best mean image AUROC here: {best} ({means.loc[best, 'i_auroc']:.3f}); best mean AU-PRO: "
    f"{means['aupro'].idxmax()} ({means['aupro'].max():.3f}). DifferNet's maps come from gradients of one "
    f"image-level likelihood, its AU-PRO is {means.loc['DifferNet', 'aupro']:.3f}."
)

# %% [markdown]
# ## Look closer: likelihood maps
#
# CFlow-AD's per-position log-likelihood (per dimension, $\log p / C$) for each stage, on a good image and
# three defective ones, then the final anomaly map. The finer stage (stride 8) outlines small defects; the
# coarser one (stride 16) sees more context but blurs them. Low values (dark) are unlikely positions.

# %%
shown_category = categories[0]
cflow_run = experiments["CFLOW-AD"].runs[shown_category]
test_samples = cflow_run.dataset.test
labels = np.array([s.label for s in test_samples])
rng = np.random.default_rng(SEED)
shown = np.concatenate(
    [
        rng.choice(np.flatnonzero(labels == 0), min(1, int((labels == 0).sum())), replace=False),
        rng.choice(np.flatnonzero(labels == 1), min(3, int((labels == 1).sum())), replace=False),
    ]
)
stage_log_p = [m.cpu().numpy() for m in cflow_run.detector.stage_log_likelihoods(test_samples)]
strides = cflow_run.detector.backbone.info.strides
likelihood_maps(
    [test_samples[i] for i in shown],
    [m[shown] for m in stage_log_p],
    [f"log p / C, stride {s}" for s in strides],
    cflow_run.prediction.maps[shown],
    final_label="CFlow anomaly map",
).show()

# %% [markdown]
# ### Normal and anomalous patches
#
# The same log-likelihoods for every position of the finest stage over the whole test set, split into
# positions inside a defect (the ground-truth mask, reduced to the grid, covers at least half of the cell)
# and positions of good images. The further apart the two histograms, the easier the decision; the overlap
# is where the errors are.

# %%
finest = stage_log_p[0]
masks = np.stack([s.mask for s in test_samples]).astype(np.float32)
cell_cover = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(masks)[:, None], finest.shape[-2:])[
    :, 0
]
covered = cell_cover.numpy() >= 0.5
defective = finest[covered if covered.any() else cell_cover.numpy() > 0]  # tiny defects: any overlap
normal = finest[labels == 0].ravel()
separation = metrics.image_auroc(
    np.concatenate([-normal, -defective]), np.r_[np.zeros(len(normal)), np.ones(len(defective))]
)
log_likelihood_histogram(
    {"positions of good images": normal, "positions inside defects": defective},
    title=f"CFlow, {shown_category}, stride {strides[0]}: AUROC of -log p between the "
    f"groups {separation:.3f}",
).show()
print(
    f"median log p / C: good positions {np.median(normal):.2f}, defect positions {np.median(defective):.2f}"
)

# %% [markdown]
# ## Why flows on pretrained features, not on pixels
#
# A flow can model any vector, pixels included, so why put it on top of an ImageNet backbone? Below, the
# very same FastFlow (same grid, same couplings, same training) is fitted on pixels instead of features:
# each grid cell holds its 2×2 block of averaged RGB values (12 numbers) rather than the backbone's
# channels (`create("fastflow", inputs="pixels")`). The argument for features: on pixels the likelihood
# is dominated by what pixels vary most in (lighting, the texture's own grain), which has little to do with
# defects, and pixel-level likelihood models are known to rate simple images as likely whatever they show;
# pretrained features already separate "what this material looks like" from such nuisances. The argument
# for pixels: a defect that is mainly a change of colour or brightness is visible in the pixels
# themselves, and a cell of 12 numbers is quicker to model than one of 152. Which wins is measured below,
# for the decision per image and for the map separately; the sentence under the table says which way
# this run went.

# %%
features_run = experiments["FastFlow"].runs[shown_category]  # the run above, on features
comparison_rows = [
    dict(
        inputs="features",
        **{k: features_run.scores[k] for k in ("i_auroc", "p_auroc", "aupro")},
        fit_s=float(results.query("method == 'FastFlow' and category == @shown_category")["fit_s"].iloc[0]),
    )
]
split = features_run.dataset
for inputs in ("pixels",):
    detector = methods.create(
        "fastflow",
        preset=PRESET,
        device=device,
        seed=SEED,
        progress=False,
        **{**OPTIONS["FastFlow"], "inputs": inputs},
    )
    tic = time.perf_counter()
    detector.fit(split.train)
    fit_seconds = time.perf_counter() - tic
    scores = metrics.evaluate(detector.predict(split.test), split.test)
    comparison_rows.append(
        dict(
            inputs=inputs,
            i_auroc=scores["i_auroc"],
            p_auroc=scores["p_auroc"],
            aupro=scores["aupro"],
            fit_s=fit_seconds,
        )
    )
pixels_vs_features = pd.DataFrame(comparison_rows).set_index("inputs")
print(
    f"FastFlow on {shown_category}: image AUROC {pixels_vs_features.loc['features', 'i_auroc']:.3f} on "
    f"features vs {pixels_vs_features.loc['pixels', 'i_auroc']:.3f} on pixels; AU-PRO "
    f"{pixels_vs_features.loc['features', 'aupro']:.3f} vs {pixels_vs_features.loc['pixels', 'aupro']:.3f}."
)
for metric, label in (("i_auroc", "image AUROC"), ("aupro", "AU-PRO")):
    gap = pixels_vs_features.loc["features", metric] - pixels_vs_features.loc["pixels", metric]
    winner = "features" if gap > 0 else "pixels" if gap < 0 else "neither"
    print(f"{label}: {winner} ahead by {abs(gap):.3f}")
pixels_vs_features.round(3)

# %% [markdown]
# ## Published numbers
#
# The papers' MVTec AD averages, **published** figures copied from the papers, not computed here:
# DifferNet's mean image AUROC over the 15 categories {cite}`rudolph2021same` (AlexNet features at
# 3 scales, 448 px, 64 test-time rotations); CFlow-AD's detection AUROC, localisation AUROC and AU-PRO
# with its best encoder {cite}`gudovskiy2022cflow`; FastFlow's image AUROC as stated in its abstract, with
# the CaiT backbone {cite}`yu2021fastflow`. A dash means the source gives no number for it.

# %%
published = pd.DataFrame(
    [
        ("DifferNet", 0.949, np.nan, np.nan),
        ("CFLOW-AD", 0.9826, 0.9862, 0.946),
        ("FastFlow", 0.994, np.nan, np.nan),
    ],
    columns=["method", "i_auroc", "p_auroc", "aupro"],
).assign(source="published: MVTec AD")
ours = means.reset_index()[["method", "i_auroc", "p_auroc", "aupro"]].assign(
    source=f"ours: {DATASET} ({', '.join(categories)}), {PRESET}, {BACKBONE}"
)
pd.concat([published, ours], ignore_index=True).set_index(["source", "method"]).round(3).astype(
    object
).fillna("–")

# %% [markdown]
# Ours are not the same experiment: other data (the synthetic textures and defects, fewer and smaller
# images), a much smaller backbone (EfficientNet-Lite0 instead of WideResNet-50, AlexNet or CaiT), and in
# quick mode a few epochs where the papers train for hundreds (FastFlow 500, CFlow 25 × 8 sub-epochs,
# DifferNet 192). DifferNet also uses this package's frozen backbone instead of AlexNet. CFlow's released
# normalisation ($\exp(\log p - \max)$ with the maximum over the *whole test set*) makes one image's score
# depend on the other test images; `normalise="fit"` takes the maxima over the training set instead.

# %%
print(f"chapter run time so far: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Try this
#
# * **Epochs.** `OPTIONS["FastFlow"] = {"epochs": 40}`: the loss printed in `detector.loss_history_` keeps
#   falling long after the image AUROC has settled; AU-PRO is what still improves. Features are cached, so
#   epochs cost only the flow's own forward and backward passes.
# * **Kernel mix.** `OPTIONS["FastFlow"] = {"conv3x3_only": True}`: every subnet becomes 3×3, more context
#   per position and more parameters; the FastFlow paper's ablation found the alternating 3×3 / 1×1 mix
#   about as accurate for less compute.
# * **Position.** `OPTIONS["CFLOW-AD"] = {"normalise": "fit"}` makes scores independent of the test batch;
#   on an object category, compare with `condition_dim=4` (almost no positional information) to see how
#   much the conditional part helps aligned objects as against textures.
# * **Test-time transformations.** `OPTIONS["DifferNet"] = {"test_transforms": 1}` scores the image as it
#   is; more rotations average out the likelihood's noise (the paper uses 64 random ones).
#
# ## References
#
# The works cited above are listed, with full details, in the book's bibliography.
