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
# # Introduction: what unsupervised industrial anomaly detection is
#
# A production line makes thousands of good parts for every bad one, and the bad ones rarely look
# alike: a scratch today, a missing screw tomorrow, a dent no one has seen before. Collecting and
# labelling enough defects to train an ordinary classifier is therefore slow and never complete.
# **Unsupervised industrial image anomaly detection (UIAD)** sidesteps the problem: a model learns
# what *normal* products look like from defect-free examples only, and at inspection time it reports
# how far each new product departs from that normal appearance — for the whole image, and pixel by
# pixel, so an operator sees where the defect is. This workbook follows the survey by Lin et al.
# {cite}`lin2024survey`, which organises the field by input modality and by method family.

# %% tags=["parameters"]
DATASET = "synthetic"  # any name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of category names (None: a default choice below)
QUICK = True  # True: about a minute on two CPU cores; False: the papers' settings (GPU, real data)
DEVICE = "auto"  # "auto", "cpu" or "cuda"
SEED = 0

# %%
import numpy as np

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, methods, survey
from uiad_lite.experiment import run_detector
from uiad_lite.plots.maps import heatmap_grid
from uiad_lite.plots.survey import datasets_scatter, family_sunburst, methods_per_year

# %% [markdown]
# ## The task in three steps
#
# The survey writes the task as three equations; here they are in plain words.
#
# 1. **Learn normality.** Given a training set $\mathcal{X} = \{x_1, \dots, x_N\}$ that contains only
#    normal samples, choose the parameters of a model $f$ so that a loss measuring how well $f$
#    describes those samples is as small as possible:
#    $\theta^{*} = \arg\min_\theta \mathcal{L}(f(x \in \mathcal{X}; \theta))$.
#    The loss depends on the family: a distance to stored features, a reconstruction error, a
#    likelihood, a disagreement between two networks...
# 2. **Score a new sample.** The trained model maps a test sample to an anomaly score,
#    $s_{\text{test}} = f(x_{\text{test}}; \theta^{*})$; higher means further from normal. Most
#    methods also return a map with one score per pixel (or per 3D point) for localisation.
# 3. **Evaluate.** With the test labels $y_{\text{test}}$ (good/defective per image, and a defect mask
#    per pixel) a metric summarises how well the scores rank defects above normal samples:
#    $\mathcal{M} = \mathrm{Evaluate}(f(x_{\text{test}}; \theta^{*}), y_{\text{test}})$.
#    Chapter 2 builds every metric of the survey's Table 3.
#
# When a sample has more than one modality (colour *and* geometry), the two must be combined somewhere
# along the way. The survey (Sec. 5.3.1) names four fusion strategies, placed by where they sit relative to
# the main detection network: **early** fusion merges the modalities' *features* (after feature extraction)
# before that network, which then sees one fused feature; **middle** fusion keeps a branch per modality
# inside the network and fuses their intermediate features in a further module; **late** fusion runs the
# modalities separately and combines their detection results; **hybrid** fusion mixes these at different
# stages, and it is the strategy the survey finds most used.
#
# ## Three settings
#
# * **RGB** — colour images, the setting with the most datasets and methods (MVTec AD, VisA, ...).
# * **3D** — point clouds of the part's surface (Real3D-AD, Anomaly-ShapeNet): defects are changes of
#   shape, such as bulges, sinks and missing material.
# * **RGB+3D (multimodal)** — an image and an aligned 3D measurement of the same part (MVTec 3D-AD,
#   Eyecandies). A stain is visible only in colour, a shallow dent only in depth: using both is the point.
#
# ## A map of the survey
#
# The package ships the survey's method and dataset tables as data (`uiad_lite.survey`), so the map
# below is computed, not drawn by hand. The method tables are Tables 4-7 (one per paradigm) and Tables 8
# (few-shot, zero-shot and multi-class learning) and 9 (anomaly simulation), which list many methods of
# Tables 4-7 again but also methods found nowhere else. The bar chart counts every distinct method once,
# under the family of the first table that lists it. Hover for counts; click a sector of the sunburst to zoom.

# %%
methods_table = survey.methods()
distinct = survey.distinct_methods()
listed_twice = int(distinct["tables"].str.contains(",").sum())
only_later = int(distinct["only_in_tables_8_9"].sum())
print(f"{len(distinct)} distinct methods in {methods_table['table'].nunique()} tables ({len(methods_table)} "
      f"table rows; {listed_twice} methods are listed in two tables, {only_later} only in Tables 8-9), "
      f"{len(survey.datasets())} datasets")
print("Counted once although listed under two names:",
      ", ".join(f"{alias} = {name}" for alias, name in survey.SAME_METHOD.items()))
methods_per_year(methods_table).show()

# %%
family_sunburst(methods_table).show()

# %%
datasets_scatter(survey.datasets()).show()

# %% [markdown]
# ## The whole loop, end to end
#
# The smallest honest detector fits one Gaussian per pixel and colour channel to the training images
# and scores a test pixel by its squared z-score (`uiad_lite/methods/baselines/pixel_gaussian.py`, a screen of
# code). It has no learned features at all, so it can only flag colours that are unusual *at that
# position*; any shift of the part or of the texture between images looks anomalous to it. That makes it
# a useful floor for every later chapter.
#
# The loop is the same in every chapter, so it lives in the package (`uiad_lite/experiment.py`,
# `run_detector`): for each category, load the data, `fit` a fresh detector on the normal training
# samples, `predict` the test samples, score them with `metrics.evaluate`, and store the row with
# `results.record`.

# %%
categories = CATEGORIES or data.categories(DATASET, root=DATA_ROOT, setting="rgb")
floor = run_detector(lambda: methods.create("pixel_gaussian", preset="quick" if QUICK else "paper"),
                     chapter="00_introduction", method="PixelGaussian", dataset=DATASET,
                     categories=categories, root=DATA_ROOT, quick=QUICK, seed=SEED)
floor.table.round(3)

# %% [markdown]
# Image AUROC (`i_auroc`) asks whether defective images score above good ones; pixel AUROC (`p_auroc`)
# and AU-PRO (`aupro`) ask whether the defective *pixels* are the ones that light up. For the two AUROCs
# 0.5 is chance. AU-PRO integrates only the first 30% of the false-positive axis and divides by 0.3, so a
# map that knows nothing scores 0.15 there, not 0.5 (chapter 2 measures it). Two columns choose a threshold
# on the very test set they grade, which no deployed detector can do: the legend below says which.

# %%
from uiad_lite.metrics import summary  # noqa: E402  (the metrics chapter's Table 3)

table3 = summary.metric_summary().set_index("key")
table3.loc[[key for key in floor.table.columns if key in table3.index], ["metric", "thresholds used"]]

# %%
rounded = floor.table.round(3)  # the numbers of the table above, rounded as shown there
image_auroc, mean = rounded.drop(index="mean")["i_auroc"], rounded.loc["mean"]
standing = ("well above chance" if mean["i_auroc"] >= 0.75 else
            "above chance" if mean["i_auroc"] >= 0.6 else "close to chance")
print(f"The floor's mean image AUROC is {mean['i_auroc']:.3f} ({standing}; chance 0.5) and its mean AU-PRO "
      f"{mean['aupro']:.3f} (chance 0.15). It does best on {image_auroc.idxmax()} (image AUROC "
      f"{image_auroc.max():.3f}) and worst on {image_auroc.idxmin()} ({image_auroc.min():.3f}).")

# %% [markdown]
# On the embedded synthetic benchmark the parts sit in nearly the same place in every image and several
# defect types have colours the normal images never show, which a per-pixel model notices at once; the
# printed line says how far that carries it here. These numbers are what every later detector has to beat,
# category by category, before its extra machinery is worth anything; chapter 3 runs the memory-bank methods
# on the same categories, so its table can be read against this one.
#
# The image score of each test sample is the largest value of its map. Below, test images of the
# category where the floor does best, with their ground truth and the predicted maps on one colour scale.

# %%
best = floor.table.drop(index="mean")["i_auroc"].idxmax()
dataset, prediction = floor.runs[best].dataset, floor.runs[best].prediction
labels = np.array([sample.label for sample in dataset.test])
rng = np.random.default_rng(SEED)
shown = np.concatenate([rng.choice(np.flatnonzero(labels == 0), 1, replace=False),
                        rng.choice(np.flatnonzero(labels == 1), 4, replace=False)])
heatmap_grid([dataset.test[i] for i in shown], prediction.maps[shown], prediction.scores[shown],
             title=f"PixelGaussian on {best}").show()

# %% [markdown]
# ## Try this
#
# * Set `CATEGORIES = ["plate"]` and compare `methods.create("pixel_gaussian", blur=1.0)` with `blur=3.0`:
#   blurring hides small misalignments of the part, so image AUROC can rise, while the smallest defects fade.
# * Lower `min_sigma` to 0.5: pixels that hardly vary in training get tiny standard deviations and
#   any noise there becomes a large z-score — watch the false alarms grow in the heat maps.
# * Compare this table with the memory-bank chapter: pretrained features tolerate shifts that break a
#   per-pixel model.
