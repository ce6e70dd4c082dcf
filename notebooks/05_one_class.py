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
# # One-class classification: draw a boundary around normal
#
# Memory banks (chapter 03) remember normal patches and measure distances to them. One-class methods
# ask a different question: *where does normal end?* They learn a boundary around the normal data, either
# as a density whose level sets enclose it, or as a classifier trained to say "normal" on one side and
# "not normal" on the other. The catch is the other side: we have no anomalies to train on. So the methods
# of this chapter *make* them, in image space (CutPaste's cut-and-pasted rectangles and scars) or in
# feature space (SimpleNet's Gaussian noise, GLASS's noise pushed by the classifier's own gradient), and a
# good part of what they achieve depends on how close those fakes come to real defects. This chapter runs
# three methods of the survey's Table 4 {cite}`lin2024survey`: CutPaste {cite}`li2021cutpaste`, SimpleNet
# {cite}`liu2023simplenet` and GLASS {cite}`chen2024unified`.

# %% tags=["parameters"]
DATASET = "synthetic"  # an RGB dataset name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of RGB category names (None: every RGB category; two in quick mode, see below)
QUICK = True  # True: small backbone, few epochs, two CPU cores; False: the papers' settings (GPU, real data)
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
from uiad_lite.methods.one_class.simplenet import truncated_l1_loss
from uiad_lite.methods.one_class.toy import toy_normality
from uiad_lite.methods.one_class.transfer import per_defect_metrics
from uiad_lite.plots.memory_bank import methods_bar_chart
from uiad_lite.plots.one_class import (
    embedding_projection,
    normality_views,
    per_defect_heatmap,
    sweep_chart,
    training_curves,
)
from uiad_lite.plots.survey import highlights_table
from uiad_lite.simulation import simulate_images
from uiad_lite.widgets import explore_maps

device = str(resolve_device(DEVICE))
found = data.categories(DATASET, root=DATA_ROOT, setting="rgb")
# quick mode fine-tunes or trains three networks per category on a CPU: two categories, the first one and
# the synthetic "plate" (between them the synthetic benchmark's six defect types, logical ones included)
quick_pick = [found[0], *(["plate"] if "plate" in found[1:] else found[1:2])]
categories = CATEGORIES or (quick_pick if QUICK else found)
PRESET = "quick" if QUICK else "paper"
catalogue = methods.catalogue()
chapter_methods = catalogue[catalogue["chapter"] == "05_one_class"]
# {"CutPaste": "cutpaste", "SimpleNet": "simplenet", "GLASS": "glass"}: the survey's names and the package's
METHODS = dict(zip(chapter_methods["survey_method"], chapter_methods["name"], strict=True))
OPTIONS = {name: {} for name in METHODS}  # preset overrides, e.g. OPTIONS["SimpleNet"] = {"noise_std": 0.5}
SIZE = "quick" if QUICK else "full"
LOAD = {} if QUICK or DATASET == "synthetic" else dict(image_size=256)
if QUICK and device == "cpu":
    torch.set_num_threads(1)  # many small tensor operations: one thread avoids synchronisation on a busy CPU
print(f"{DATASET}: {categories} (RGB categories found: {found}) on {device}; preset {PRESET!r}")

# %% [markdown]
# ## Where this sits
#
# The survey files one-class classification under *feature embedding* methods, beside teacher-student
# networks, distribution maps and memory banks (Sec. 3.1 and Table 4 of {cite}`lin2024survey`). The rows
# below come from `uiad_lite.survey`; the highlights are ours.

# %%
table4 = survey.methods(table=4, subfamily="one-class classification")
print(f"Table 4 lists {len(table4)} one-class methods, {table4['year'].min()}–{table4['year'].max()}; "
      f"this chapter runs {', '.join(METHODS)}.")
highlights_table(table4)

# %% [markdown]
# ## The idea: a boundary around normal
#
# Write $f \in \mathbb{R}^d$ for an embedding of an image or of a patch. A one-class detector is a score
# $s(f)$ that is low on the normal data and grows away from it; where we put the threshold decides the
# boundary. Two views:
#
# **The density (hypersphere) view.** Fit a density to the normal embeddings and call unlikely points
# anomalous. CutPaste uses the simplest one, a Gaussian density estimator (GDE): with the mean $\mu$ and
# covariance $\Sigma$ of the normal embeddings,
#
# $$\log p(f) = -\tfrac12\big[d\log 2\pi + \log\det\Sigma + (f-\mu)^\top\Sigma^{-1}(f-\mu)\big],
#   \qquad s(f) = (f-\mu)^\top\Sigma^{-1}(f-\mu).$$
#
# Its level sets are ellipsoids (spheres after whitening): one blob of normality. That is only as good as
# the embedding: CutPaste therefore first *trains* the network so that normal images cluster and images
# with a pasted rectangle or a thin scar do not, by classifying {normal, CutPaste, scar}.
#
# **The classifier view.** Train a discriminator $D$ to separate normal features $q$ from synthetic
# anomalous ones $\tilde q$, and use $-D$ as the score. SimpleNet makes $\tilde q = q + \varepsilon$,
# $\varepsilon\sim\mathcal N(0,\sigma^2 I)$, on adapted patch features $q = G(f)$, and trains with a
# truncated $\ell_1$ loss with margin $th = 0.5$:
#
# $$\mathcal L = \operatorname{mean}\max(0,\ th - D(q)) + \operatorname{mean}\max(0,\ th + D(\tilde q)).$$
#
# GLASS keeps that set-up but climbs $D$'s loss on the noisy features for a few steps, moving them towards
# what $D$ still calls normal, while holding each within a shell $r \le \lVert\tilde q - q\rVert \le 2r$
# of its normal feature; and it adds image-level fakes (Perlin-shaped texture blends) whose patch features
# are labelled by the blend's mask.
#
# The toy below shows the three boundaries on the same two-dimensional "normal features", a curved band
# (computed with the package's own pieces: `uiad_lite/methods/one_class/toy.py`). Dark = normal. The
# Gaussian's ellipses cannot follow the curve and leave the inside of the arc normal; the discriminator
# trained on Gaussian noise wraps the band at about the noise's distance; with GLASS's ascent the
# negatives (green crosses) sit closer to the data and the boundary follows it more tightly.

# %%
toy = toy_normality(seed=SEED)
offset = {name: float(np.linalg.norm(points - toy.normal, axis=1).mean())
          for name, points in (("noise", toy.noisy), ("ascent", toy.ascended))}
print(f"mean distance of a negative from its normal point: Gaussian noise {offset['noise']:.3f}, "
      f"after gradient ascent and projection {offset['ascent']:.3f}")
normality_views(toy).show()

# %% [markdown]
# The truncated loss in numbers: a normal feature scored above $th$ and a noisy one below $-th$ cost
# nothing, so the loss stops pushing features that are already on the right side of the margin.

# %%
scores_normal, scores_noisy = torch.tensor([0.7, 0.2, -0.1]), torch.tensor([-0.8, 0.0, 0.3])
print(f"D on normal {[round(v, 2) for v in scores_normal.tolist()]}, "
      f"on noisy {[round(v, 2) for v in scores_noisy.tolist()]} -> loss "
      f"{float(truncated_l1_loss(scores_normal, scores_noisy)):.4f}")

# %% [markdown]
# ## The methods in code
#
# One file each in `uiad_lite/methods/one_class/`: `cutpaste.py` (with the GDE in `gde.py`),
# `simplenet.py` and `glass.py`, which share the frozen features, the adaptor and the discriminator in
# `discriminator.py`. The simulations come from `uiad_lite.simulation` (chapter 14). Each constructor
# carries the released code's defaults; the presets set the backbone and the training length. In quick
# mode CutPaste fine-tunes only the last two stages of EfficientNet-Lite0 at 128 px for two epochs, and
# SimpleNet and GLASS train for four epochs with ten times the released learning rates and a noise scale
# sized to this backbone's features (the section on SimpleNet's noise scale shows why).

# %%
for label, name in METHODS.items():
    print(f"{label}{inspect.signature(methods.detector_class(name).__init__)}".replace("self, ", ""))
    print(f"    preset {PRESET!r}: {methods.preset_settings(name, PRESET)}\n")

# %% [markdown]
# ## Run it
#
# A fresh detector per method and category, fitted on the normal training images only and evaluated on
# the test images (`uiad_lite.experiment.run_detector`, which also records every row in the results
# registry). The fit time includes the simulations and the training.

# %%
experiments = {}
for label, name in METHODS.items():

    def make_detector(name=name, label=label):
        return methods.create(name, preset=PRESET, device=device, seed=SEED, progress=False, **OPTIONS[label])

    backbone = methods.preset_settings(name, PRESET)["backbone"]
    experiments[label] = run_detector(make_detector, chapter="05_one_class", method=label, dataset=DATASET,
                                      categories=categories, root=DATA_ROOT, quick=QUICK, seed=SEED,
                                      device=device, backbone=backbone, load_options=LOAD)

# %% [markdown]
# ## Results
#
# Image AUROC (`i_auroc`): do defective images outrank good ones? Pixel AUROC (`p_auroc`) and AU-PRO
# (`aupro`, up to a false-positive rate of 0.3): do the defective pixels light up?

# %%
results = pd.concat([experiment.table.reset_index() for experiment in experiments.values()],
                    ignore_index=True)
columns = ["method", "category", "i_auroc", "p_auroc", "aupro", "fit_s", "predict_ms_per_image"]
results[columns].set_index(["method", "category"]).round(3)

# %%
per_category = results[results["category"] != "mean"]
methods_bar_chart(per_category, title=f"One-class methods on {DATASET} (the menu switches the metric)").show()
means = results[results["category"] == "mean"].set_index("method")
best = means["i_auroc"].idxmax()
print(f"Best mean image AUROC: {best} ({means.loc[best, 'i_auroc']:.3f}); best mean AU-PRO: "
      f"{means['aupro'].idxmax()} ({means['aupro'].max():.3f}). Fit time per category: "
      + ", ".join(f"{m} {means.loc[m, 'fit_s']:.1f} s" for m in means.index) + ".")

# %% [markdown]
# ## Look closer: the maps
#
# The same test images for each method: a good one, then defective ones; ground truth in the middle row,
# the anomaly map at the bottom. CutPaste's maps come from a patch-level GDE on its stage-3 feature map
# (stride 16: coarse blobs); SimpleNet and GLASS score every cell of a stride-8 grid. In JupyterLab the cell
# shows a live explorer instead.

# %%
shown_category = categories[0]
first = next(iter(experiments.values()))
test_samples = first.runs[shown_category].dataset.test
labels = np.array([sample.label for sample in test_samples])
rng = np.random.default_rng(SEED)
shown = np.concatenate([rng.choice(np.flatnonzero(labels == 0), 1, replace=False),
                        rng.choice(np.flatnonzero(labels == 1), min(3, int(labels.sum())), replace=False)])
predictions = {label: experiment.runs[shown_category].prediction for label, experiment in experiments.items()}
shown_maps = explore_maps(test_samples, predictions, shown, title=shown_category)

# %% [markdown]
# ## What the self-supervised task teaches
#
# CutPaste's fine-tuning is a classification problem with known answers, so we can watch it learn: the
# training accuracy over {normal, CutPaste, scar} per epoch (chance is one in three). What matters for
# detection is not that accuracy but what it does to the embedding: below, the image embeddings of
# CutPaste's network on the first category, projected on the two main directions of the normal training
# embeddings, with the GDE's 1-, 2- and 3-sigma ellipses in that plane. The simulated images were never
# scored at test time; if they fall outside the ellipses, the network has learnt to set such changes
# apart, and real defects that change the image in similar ways follow them.

# %%
cutpaste_run = experiments["CutPaste"].runs[shown_category]
cutpaste = cutpaste_run.detector
print(f"CutPaste on {shown_category}: training accuracy per epoch "
      f"{[round(a, 3) for a in cutpaste.accuracy_history_]} "
      f"(chance {1 / (1 + len(cutpaste.simulations)):.3f})")
train = cutpaste_run.dataset.train[: cutpaste.max_train_images or None]
normal_images = [sample.image for sample in train[:24]]
groups = {
    "normal (train)": cutpaste.embed(train)[0].cpu().numpy(),
    "good (test)": cutpaste.embed([s for s in test_samples if s.label == 0])[0].cpu().numpy(),
    "defective (test)": cutpaste.embed([s for s in test_samples if s.label == 1])[0].cpu().numpy(),
}
for simulation in cutpaste.simulations:
    fakes = simulate_images(normal_images, simulation, np.random.default_rng(SEED))[0]
    simulated = [data.Sample(shown_category, "train", 1, f"simulated_{simulation}", image=image)
                 for image in fakes]
    groups[f"simulated {simulation}"] = cutpaste.embed(simulated)[0].cpu().numpy()
embedding_projection(groups, reference="normal (train)",
                     title=f"CutPaste embeddings on {shown_category} (L2-normalised, PCA of the normal ones)",
                     ).show()

# %%
histories = {label: experiment.runs[shown_category].detector.loss_history_
             for label, experiment in experiments.items()}
training_curves(histories, title=f"Training loss per epoch on {shown_category} (each method its own loss)",
                ).show()

# %% [markdown]
# ## Which simulation helps which defect
#
# Each method learns from a different kind of fake: CutPaste from displaced rectangles and thin scars,
# SimpleNet from isotropic noise on every patch feature, GLASS from noise steered by its discriminator plus
# Perlin-shaped texture blends. The table below evaluates each run per defect type (good test images
# against the images of one defect type; `uiad_lite.methods.one_class.transfer.per_defect_metrics`), mean
# over the categories that have that type. Chapter 14 runs the controlled version of this question: one
# and the same discriminator trained on each simulation in turn, evaluated per defect type (its "transfer"
# table); read the two together. One would expect thin, elongated defects to favour scar-like fakes and
# colour or texture changes to favour texture blends; feature noise has no shape at all and teaches only
# "anything unlike the normal features". The printed line says, per defect type, which method this run
# found best; with three methods that also differ in backbone use and training, it is a hint, not a proof.

# %%
rows = []
for label, experiment in experiments.items():
    for category, run in experiment.runs.items():
        table = per_defect_metrics(run.prediction, run.dataset.test, keys=("i_auroc", "p_auroc"))
        rows.append(table.assign(method=label, category=category))
by_defect = (pd.concat(rows, ignore_index=True).groupby(["method", "defect"], sort=False)
             [["i_auroc", "p_auroc"]].mean())
per_defect_heatmap(by_defect.reset_index(), "i_auroc",
                   title="Image AUROC per defect type (mean over categories)").show()
winners = by_defect["i_auroc"].unstack("method").idxmax(axis=1)
print("best image AUROC per defect type: " + ", ".join(f"{d}: {m}" for d, m in winners.items()))
by_defect.unstack("method").round(3)

# %% [markdown]
# ## Look closer: SimpleNet's noise scale
#
# The released SimpleNet adds noise of standard deviation 0.015 to the adapted features of a WideResNet-50.
# That number only means something relative to the features: the quick preset's EfficientNet-Lite0 features
# are much larger (their per-channel standard deviation is printed below), and 0.015 on them is invisible,
# so the discriminator has nothing to learn. The sweep refits SimpleNet on one category with several noise
# levels, everything else as in the preset; the dashed line marks the preset's value.

# %%
sweep_category = categories[0]
split = data.load(DATASET, root=DATA_ROOT, category=sweep_category, size=SIZE, **LOAD)
preset_noise = methods.preset_settings("simplenet", PRESET)["noise_std"]
simplenet = experiments["SimpleNet"].runs[sweep_category].detector
feature_std = float(simplenet.extractor(split.train[:16]).std(dim=(0, 2, 3)).mean())
noise_levels = sorted({0.015, preset_noise, preset_noise * 3})  # released, preset, more
sweep_rows = []
for noise in noise_levels:
    detector = methods.create("simplenet", preset=PRESET, device=device, seed=SEED, progress=False,
                              **{**OPTIONS["SimpleNet"], "noise_std": noise})
    report = metrics.evaluate(detector.fit(split.train).predict(split.test), split.test)
    sweep_rows.append({"noise_std": noise, "noise / feature std": noise / feature_std,
                       **{key: report[key] for key in ("i_auroc", "p_auroc", "aupro")},
                       "final_loss": detector.loss_history_[-1]})
noise_sweep = pd.DataFrame(sweep_rows)
print(f"{sweep_category}: mean per-channel standard deviation of the frozen features {feature_std:.3g}; "
      f"a final loss near 1.0 means the discriminator separates nothing (both margins violated by ~0.5)")
released, chosen = noise_sweep.iloc[0], noise_sweep[noise_sweep["noise_std"] == preset_noise].iloc[0]
print(f"released sigma {released['noise_std']}: image AUROC {released['i_auroc']:.3f}, final loss "
      f"{released['final_loss']:.3f}; preset sigma {preset_noise}: image AUROC {chosen['i_auroc']:.3f}, "
      f"final loss {chosen['final_loss']:.3f}")
sweep_chart(noise_sweep, "noise_std", ["i_auroc", "aupro"], marker=preset_noise, marker_label="preset",
            title=f"SimpleNet on {sweep_category}: accuracy against the noise scale").show()
noise_sweep.round(4)

# %% [markdown]
# Too little noise and the fakes are indistinguishable from normal features: the loss stays near its
# starting value and the scores are those of an untrained network. Much more noise makes the task easy (the
# loss falls towards zero): the discriminator can then draw a loose boundary far from the normal features,
# and defects subtler than the noise fall inside it; whether that costs accuracy depends on the data (the
# last row shows it for this category). The useful range is where the fakes are *near misses*, which is the
# whole argument of GLASS's gradient ascent.
#
# ## Published numbers
#
# MVTec AD averages over its 15 categories as the papers report them: **published** figures, copied, not
# computed here. CutPaste (3-way, ImageNet-pretrained ResNet-18, GDE): image AUROC from its Table 1 and
# pixel AUROC from its Table 3 {cite}`li2021cutpaste`; SimpleNet (WideResNet-50) from its Table 1
# {cite}`liu2023simplenet`; GLASS (WideResNet-50) from its results on MVTec AD {cite}`chen2024unified`.
# A dash means we do not quote a number.

# %%
published = pd.DataFrame(
    [
        ("CutPaste (3-way)", 0.952, 0.960, np.nan),
        ("SimpleNet", 0.996, 0.981, np.nan),
        ("GLASS", 0.999, 0.993, np.nan),
    ],
    columns=["method", "i_auroc", "p_auroc", "aupro"],
).assign(source="published: MVTec AD")
ours = means.reset_index()[["method", "i_auroc", "p_auroc", "aupro"]].assign(
    source=f"ours: {DATASET}, preset {PRESET!r}")
comparison = pd.concat([published, ours], ignore_index=True).set_index(["source", "method"])
comparison.round(3).astype(object).fillna("–")

# %% [markdown]
# Ours are a different experiment: another dataset, and in quick mode a much smaller backbone, smaller
# images and a few epochs instead of hundreds. Two protocol notes on the published figures: SimpleNet's and
# GLASS's released training loops evaluate the *test set* during training and keep the best checkpoint, so
# their numbers are upper bounds of what one trained model reaches; ours keep the last epoch. CutPaste's
# published maps come from a second network trained on 64×64 crops and evaluated densely; ours come from
# the image network's feature map (`cutpaste.py` says why).
#
# ## Try this
#
# * **CutPaste's task.** `OPTIONS["CutPaste"] = {"simulations": ("cutpaste",)}` is the binary variant;
#   `("cutpaste_scar",)` trains on scars only. Look at the per-defect table: scratches and cracks should
#   suffer least from losing the rectangles. `{"image_score": "map_max"}` scores an image by its worst cell
#   instead of the image GDE, which helps small defects that barely move a global average.
# * **Noise scale.** Extend `noise_levels`, or set `OPTIONS["SimpleNet"] = {"noise_std": ...}` and
#   `OPTIONS["GLASS"]` alike, and watch where the loss stops falling. With `{"gas_steps": 0}` GLASS reduces
#   to SimpleNet's noise plus the local (texture) anomalies: the difference is what the ascent adds.
# * **Longer training.** `{"epochs": 16}` for SimpleNet and GLASS (quick uses 4) or `{"epochs": 6}` for
#   CutPaste; fit time grows linearly. The released settings (`QUICK=False`) train for hundreds of epochs
#   on a GPU.
# * **All categories.** `CATEGORIES = found` runs quick mode on every RGB category (about twice the time);
#   `benchmarks/one_class_bench.py` does the same outside the notebook.
#
# ## References
#
# The works cited above are listed, with full details, in the book's bibliography.
