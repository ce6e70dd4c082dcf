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
# # RGB + 3D: five ways to join a photograph and a point cloud
#
# The point-cloud chapter saw dents and missed stains; the RGB chapters see stains and miss dents. An
# inspection station with a camera *and* a 3D sensor should see both — if the two signals are joined
# well. The survey's Sec. 5 {cite}`lin2024survey` sorts the ways of joining them by *where* they meet:
# **early** (features concatenated before the detector), **middle** (a learned mapping between the
# modalities), **late** (one detector per modality, scores combined) and **hybrid** (a decision layer over
# several scores). This chapter builds one detector of each kind, plus Crossmodal Feature Mapping (CFM)
# {cite}`costanzino2023multimodal`, on the same RGB backbone and the same FPFH descriptors, and asks what
# each can still do when one modality is missing. The next chapter compares them defect type by defect
# type.

# %% tags=["parameters"]
DATASET = "synthetic"  # a dataset name in uiad_lite.data.DATASETS (needs an RGB-D dataset for the runs)
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of RGB-D category names (None: the first RGB-D category in quick mode, else all)
QUICK = True  # True: about ninety seconds on two CPU cores; False: the papers' settings
DEVICE = "auto"  # "auto", "cpu" or "cuda"
SEED = 0

# %%
import inspect
from dataclasses import replace

import numpy as np
import torch
from IPython.display import display

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, methods, survey
from uiad_lite.features import resolve_device
from uiad_lite.methods.multimodal import comparison
from uiad_lite.methods.registry import detector_class
from uiad_lite.plots.multimodal import fusion_diagram, map_row, published_bars
from uiad_lite.plots.point_clouds import survey_3d_strip

device = str(resolve_device(DEVICE))
PRESET = "quick" if QUICK else "paper"
if QUICK and device == "cpu":
    torch.set_num_threads(1)  # FPFH, small MLPs and memory banks: one thread each beats two that fight
rgbd = data.categories(DATASET, root=DATA_ROOT, setting="rgbd")
chosen = [c for c in (CATEGORIES or rgbd) if c in rgbd]
chosen = chosen[:1] if QUICK and not CATEGORIES else chosen
print(f"{DATASET}: RGB-D categories {rgbd}; this run: {chosen}; preset {PRESET!r}")
if not chosen:
    print(
        f"Note: no RGB-D category was found in {DATASET} (it is a {data.info(DATASET).setting} dataset), so "
        "this run shows the map of the methods and the published numbers and skips every experiment. Run the "
        "chapter with DATASET='synthetic' or 'mvtec_3d' to see them."
    )

# %% [markdown]
# ## Where this sits
#
# The survey's Table 7 lists the RGB + 3D methods next to the 3D-only ones: memory banks (BTF's
# "PatchCore+FPFH" {cite}`horwitz2023back`, M3DM {cite}`wang2023multimodal`, CPMF, ...), teacher-student
# pairs and reconstruction methods such as CFM. Hover a marker for its one-line summary.

# %%
table7 = survey.methods(table=7)
survey_3d_strip(table7[table7["setting"] == "multimodal"], title="Survey Table 7: RGB + 3D methods by year")

# %% [markdown]
# Where the two modalities meet decides what the detector can see. The orange box in each pipeline is the
# place where RGB and 3D are joined:

# %%
fusion_diagram()

# %% [markdown]
# ## The five detectors
#
# All five read the same per-patch features: the frozen backbone's patch features $f^{2D}_{ij}$ (the memory
# bank chapter's, 3×3 neighbourhood mean, stages concatenated) and FPFH descriptors pooled onto the same
# grid $f^{3D}_{ij}$ (the point-cloud chapter's). Code in `uiad_lite/methods/multimodal/`: the blocks in
# `fusion.py`, one file per detector.
#
# * **`fusion_early`** — BTF's RGB + FPFH: $\phi_{ij} = [f^{2D}_{ij}, f^{3D}_{ij}]$ into one PatchCore
#   bank $\mathcal M$; the patch score is $s_{ij} = \min_{m\in\mathcal M}\lVert\phi_{ij} - m\rVert$. The
#   released code concatenates raw values, so the modality with the larger spread decides $s_{ij}$ (FPFH
#   histograms sum to 100 per angle; chapter 11 measures the ratio for our backbone).
#   `normalise="unit"` scales each modality to unit root-mean-square norm.
# * **`fusion_middle`** — M3DM's unsupervised feature fusion: per-modality MLPs $\chi^{2D}, \chi^{3D}$
#   trained on normal patches with a patch-wise InfoNCE loss (the RGB and 3D features of one patch are a
#   positive pair, other patches of the batch negatives); the fused feature
#   $[\chi^{3D}(f^{3D}), \chi^{2D}(f^{2D})]$ goes into one bank.
# * **`fusion_late`** — one bank per modality; each patch score is z-scored with the mean and standard
#   deviation of patch scores on *held-back* normal samples, then combined:
#   $s_{ij} = \max\big(z^{2D}_{ij}, z^{3D}_{ij}\big)$ (or sum, or product).
# * **`fusion_hybrid`** — M3DM's decision layer: the two banks' scores $(s^{3D}, s^{2D})$ of normal
#   samples, each first put on a common scale (released: RGB scores × 0.1; quick preset: each divided by
#   its mean on held-back normal samples), train a linear one-class SVM; its output $w^\top s$ is the
#   score. M3DM's 3D features come from a Point-MAE transformer whose weights are not reachable offline:
#   we use FPFH and say so.
# * **`cfm`** — Crossmodal Feature Mapping: MLPs $M_{2D\to3D}$ and $M_{3D\to2D}$ learn to predict one
#   modality's feature from the other's on normal patches; the score is the product of the two mapping
#   errors, $s_{ij} = \lVert \hat f^{3D}_{ij} - \bar f^{3D}_{ij}\rVert\cdot\lVert \hat f^{2D}_{ij} -
#   \bar f^{2D}_{ij}\rVert$ with bars for unit-normalised vectors (the released code's "cosine" maps).

# %%
catalogue = methods.catalogue()
chapter_methods = catalogue[catalogue["chapter"] == "10_multimodal"].set_index("name")
SURVEY_NAMES = {"fusion_early": "PatchCore+FPFH (BTF)", "fusion_middle": "M3DM's fusion block",
                "fusion_late": "—", "fusion_hybrid": "M3DM", "cfm": "CFM"}  # fmt: skip
chapter_methods["in the survey (Table 7)"] = chapter_methods.index.map(SURVEY_NAMES)
display(chapter_methods[["in the survey (Table 7)", "subfamily", "trains", "reference"]])
for name in chapter_methods.index:
    print(f"{name}: {methods.preset_settings(name, PRESET)}")
print("cfm", inspect.signature(detector_class("cfm")))

# %% [markdown]
# ## Run them
#
# The features of each category are extracted once and shared (`comparison.category_data`); every detector
# is then fit on the normal training grids and scores the test grids. Fit and predict times add each
# detector's share of the extraction, so they are what a stand-alone `fit` / `predict` costs. Each run is
# recorded in `results/10_multimodal.csv`.

# %%
LOAD = {"max_train": 20} if QUICK else {"max_train": None}
REGISTERED = ["early_raw", "middle", "late_max", "hybrid", "cfm"]
NAMES = {"early_raw": "fusion_early", "middle": "fusion_middle", "late_max": "fusion_late",
         "hybrid": "fusion_hybrid", "cfm": "cfm"}  # fmt: skip
prepared = [
    comparison.category_data(DATASET, c, root=DATA_ROOT, quick=QUICK, preset=PRESET, device=device, **LOAD)
    for c in chosen
]
overall = kinds = runs = None
if prepared:
    overall, kinds, runs = comparison.compare(
        REGISTERED, prepared, preset=PRESET, seed=SEED, device=device, record="10_multimodal",
        dataset=DATASET, quick=QUICK,
    )  # fmt: skip
    overall["detector"] = overall["strategy"].map(NAMES)
    columns = ["i_auroc", "aupro", "p_auroc", "fit_s", "predict_s_per_image", "peak_memory_mb"]
    display(overall.set_index(["detector", "category"])[columns].round(3))

# %% [markdown]
# ## Look closer: three defects, five maps
#
# A dent (geometry only), a stain (colour only) and a hole (both), each with the five detectors' maps on
# their own colour scales. Compare how each detector's map treats the stain, which leaves the geometry
# untouched: only the RGB half of each detector can see it.

# %%
if runs:
    first = prepared[0]
    for defect in ("dent", "stain", "hole"):
        picks = [i for i, s in enumerate(first.samples) if s.defect == defect]
        if not picks:
            continue
        index = picks[0]
        sample = first.samples[index]
        maps = {NAMES[k]: runs[(k, first.category)].prediction.maps[index] for k in REGISTERED}
        display(map_row(sample.image, sample.mask, maps, title=f"{first.category} / {defect}"))

# %% [markdown]
# ### CFM's two mappings
#
# CFM's maps are made of two errors. On a dent, the RGB feature predicts a flat surface, so the 3D
# mapping error $d_{3D}$ rises; the observed dent also predicts the wrong RGB feature, so $d_{2D}$ rises
# too. The product keeps what both errors agree on. The loss falling over the epochs is the mappings being
# learned on normal patches only.

# %%
if runs:
    cfm = runs[("cfm", first.category)].detector
    d2, d3 = cfm.mapping_errors(first.test)
    for defect in ("dent", "stain"):
        picks = [i for i, s in enumerate(first.samples) if s.defect == defect]
        if picks:
            i = picks[0]
            panels = {"d_2D (3D→2D error)": d2[i].numpy(), "d_3D (2D→3D error)": d3[i].numpy(),
                      "product (patch grid)": (d2[i] * d3[i] * first.test.valid[i]).numpy()}  # fmt: skip
            display(
                map_row(first.samples[i].image, first.samples[i].mask, panels, title=f"CFM on a {defect}")
            )
    normal = np.array([s.label == 0 for s in first.samples])
    product = (d2 * d3 * first.test.valid).flatten(1).max(dim=1).values.numpy()
    print(
        f"CFM loss (1 - cosine, mean of both directions): first epoch {cfm.history_[0]:.3f}, last "
        f"{cfm.history_[-1]:.3f}; largest patch error on good test images {product[normal].mean():.3f} on "
        f"average, on defective ones {product[~normal].mean():.3f}."
    )
    hybrid = runs[("hybrid", first.category)].detector
    weights = hybrid.image_layer_.weights
    scale = hybrid.weights_["image"]
    print(
        f"fusion_hybrid's decision layer: image score = {weights[0] * scale[0]:.3g}·s_3D + "
        f"{weights[1] * scale[1]:.3g}·s_2D (scaling and SVM weights together)"
    )

# %% [markdown]
# ## When a modality is missing
#
# A sensor fails, a scan is dropped: a test sample arrives with only its image or only its cloud (survey
# Sec. 5.3.3). By default every detector refuses it with the sample's own error:

# %%
if runs:
    early = methods.create("fusion_early", preset=PRESET, seed=SEED, device=device, progress=False)
    early.fit(data.load(DATASET, root=DATA_ROOT, category=chosen[0], size="quick" if QUICK else "full",
                        max_train=4).train)  # fmt: skip
    try:
        early.predict([replace(first.samples[0], xyz=None)])
    except ValueError as error:
        print(f"ValueError: {error}")

# %% [markdown]
# Two strategies have an explicit way out. Late fusion, with `missing="fallback"`, scores the sample with
# the branch it has, on the same normalised scale; CFM, with `missing="impute"`, predicts the absent
# modality's features from the present one and scores the present modality's cycle error. Early, middle and
# hybrid fusion need both inputs by construction. Below, every test sample loses its cloud, then its image:
# image AUROC and the drop from the full input.

# %%
if runs:
    missing = comparison.missing_modality(runs, first)
    missing["detector"] = missing["strategy"].map(NAMES)
    display(missing.set_index(["detector", "input"])[["i_auroc", "aupro", "i_auroc_drop", "note"]].round(3))
    late = missing[missing["strategy"] == "late_max"].set_index("input")["i_auroc"]
    print(
        f"fusion_late keeps image AUROC {late['RGB only']:.3f} with RGB only and {late['xyz only']:.3f} "
        f"with xyz only (full input {late['RGB + xyz']:.3f})."
    )

# %% [markdown]
# What the numbers say: with one branch left, late fusion becomes that branch's detector, so it keeps
# the defects that modality sees (RGB only: stains and holes; xyz only: dents, bumps and holes) and loses
# the others. CFM's imputation has no observation of the missing modality to compare against, so its
# score rests on how well the two mappings undo each other — weaker than a detector built for one modality.
#
# ## Published numbers
#
# MVTec 3D-AD means over its ten categories, **published** (not measured here): BTF's RGB-only and
# FPFH-only rows from its released code's README, the fused rows from the papers' main tables
# {cite}`horwitz2023back,wang2023multimodal,costanzino2023multimodal`. Ours differ because the data differ
# (synthetic objects with four clean defect types), the backbone is the small quick one, and M3DM's and
# CFM's transformer features are replaced by FPFH and a CNN.

# %%
display(comparison.PUBLISHED.set_index("method"))
published_bars(comparison.PUBLISHED)

# %% [markdown]
# ## Try this
#
# * `methods.create("fusion_late", preset=PRESET, combine="sum")` or `normalise="quantile"`: a different
#   way to put the two branches on one scale; `combine="product"` needs no calibration at all (a product
#   ranks the same whatever scale one factor has) — see chapter 11 for what that costs.
# * `methods.create("fusion_hybrid", preset="paper")` fits the decision layer on the training samples
#   themselves, as M3DM's released code does (`decision_data="train"`), instead of held-back ones.
# * `methods.create("cfm", preset=PRESET, image_score="max")`: the map's maximum instead of the released
#   per-image normalisation.
#
# ## References
#
# The works cited above are listed, with full details, in the book's bibliography.
