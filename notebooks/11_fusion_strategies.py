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
# # Fusion strategies side by side: the cookie example, measured
#
# The survey {cite}`lin2024survey` motivates RGB + 3D inspection with a cookie (after MVTec 3D-AD
# {cite}`bergmann2022beyond`): a dent that no photograph shows, a chocolate stain that no depth map shows,
# a hole that both show. It then sorts multimodal detectors by where the two modalities meet — early,
# middle, late, hybrid. This chapter turns that example into a measurement: every strategy of the previous
# chapter, plus variants and the two single-modality references, runs on the same features of the same
# RGB-D categories, and each is scored per *kind* of defect: geometry only (dent, bump), colour only
# (stain), both (hole). It does not need chapter 10 to have run.

# %% tags=["parameters"]
DATASET = "synthetic"  # a dataset name in uiad_lite.data.DATASETS (needs an RGB-D dataset for the runs)
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of RGB-D category names (None: every RGB-D category of DATASET)
QUICK = True  # True: about ninety seconds on two CPU cores; False: the papers' settings
DEVICE = "auto"  # "auto", "cpu" or "cuda"
SEED = 0

# %%
import numpy as np
import pandas as pd
import torch
from IPython.display import display

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data
from uiad_lite.features import resolve_device
from uiad_lite.methods.multimodal import comparison
from uiad_lite.plots.multimodal import (
    cost_bars,
    fusion_diagram,
    kind_heatmap,
    published_bars,
    scale_sweep,
    table_figure,
)

device = str(resolve_device(DEVICE))
PRESET = "quick" if QUICK else "paper"
if QUICK and device == "cpu":
    torch.set_num_threads(1)  # FPFH, small MLPs and memory banks: one thread each beats two that fight
rgbd = data.categories(DATASET, root=DATA_ROOT, setting="rgbd")
chosen = [c for c in (CATEGORIES or rgbd) if c in rgbd]
print(f"{DATASET}: RGB-D categories {rgbd}; this run: {chosen}; preset {PRESET!r}")
if not chosen:
    print(
        f"Note: no RGB-D category was found in {DATASET} (it is a {data.info(DATASET).setting} dataset), so "
        "this run shows the strategies and the published numbers and skips every measurement. Run the "
        "chapter with DATASET='synthetic' or 'mvtec_3d' to see them."
    )

# %% [markdown]
# ## The contenders
#
# Four places to join the modalities (the orange boxes), and ten detectors built from them. "RGB alone" and
# "FPFH alone" are the two branches of late fusion used on their own: the yardsticks every fusion must beat
# on the defects its better modality sees.

# %%
display(fusion_diagram())
contenders = pd.DataFrame(
    [(key, name, overrides, comparison.DESCRIPTIONS[key])
     for key, (name, overrides) in comparison.STRATEGIES.items()],
    columns=["strategy", "registry name", "overrides", "what it is"],
).set_index("strategy")  # fmt: skip
display(contenders)

# %% [markdown]
# ## Run every strategy on every RGB-D category
#
# Features are extracted once per category and shared; each strategy is fit on the normal training grids
# (20 training samples per category in quick mode) and scores the test grids. Times include each
# strategy's share of the feature extraction. Every run is recorded in `results/11_fusion_strategies.csv`.

# %%
LOAD = {"max_train": 20} if QUICK else {"max_train": None}
STRATEGIES = list(comparison.STRATEGIES)
prepared = [
    comparison.category_data(DATASET, c, root=DATA_ROOT, quick=QUICK, preset=PRESET, device=device, **LOAD)
    for c in chosen
]
overall = kinds = runs = None
if prepared:
    overall, kinds, runs = comparison.compare(
        STRATEGIES, prepared, preset=PRESET, seed=SEED, device=device, record="11_fusion_strategies",
        dataset=DATASET, quick=QUICK,
    )  # fmt: skip
    means = overall.groupby("strategy", sort=False).mean(numeric_only=True)
    display(means[["i_auroc", "aupro", "p_auroc"]].round(3))

# %% [markdown]
# ## Per defect kind
#
# Image AUROC of good test samples against one kind of defect at a time, and AU-PRO over the same images,
# averaged over the categories. The table scrolls; the heat map switches between the two metrics (menu at
# the top right).

# %%
if prepared and (kinds["kind"] != "unknown").any():
    by_kind = kinds.groupby(["strategy", "kind"], sort=False)[["i_auroc", "aupro"]].mean().reset_index()
    order = [k for k in comparison.KINDS if k in set(by_kind["kind"])]
    auroc = by_kind.pivot(index="strategy", columns="kind", values="i_auroc").loc[STRATEGIES, order]
    aupro = by_kind.pivot(index="strategy", columns="kind", values="aupro").loc[STRATEGIES, order]
    auroc["all defects"], aupro["all defects"] = means["i_auroc"], means["aupro"]
    combined = pd.concat([auroc.add_prefix("I-AUROC: "), aupro.add_prefix("AU-PRO: ")], axis=1)
    display(table_figure(combined.round(3), title="Per defect kind, mean over categories"))
    display(kind_heatmap(auroc, aupro, title="Which strategy sees which defect"))
elif prepared:
    print("The defect types of this dataset are not labelled geometry-only / colour-only, so only the "
          "overall table is shown.")  # fmt: skip

# %% [markdown]
# ## Where each strategy wins, and why
#
# The numbers below are read from the table above.

# %%
if prepared and (kinds["kind"] != "unknown").any():
    fused = [s for s in STRATEGIES if s not in ("rgb_alone", "fpfh_alone")]
    best = means.loc[fused, "i_auroc"].idxmax()
    for kind in order:
        top = auroc.loc[fused, kind].idxmax()
        rgb_alone, fpfh_alone = auroc.loc["rgb_alone", kind], auroc.loc["fpfh_alone", kind]
        print(f"{kind}: best fusion {top} ({auroc.loc[top, kind]:.3f}); RGB alone {rgb_alone:.3f}, "
              f"FPFH alone {fpfh_alone:.3f}")  # fmt: skip
    geometry = auroc.loc[best, "geometry only"] if "geometry only" in order else np.nan
    colour = auroc.loc[best, "colour only"] if "colour only" in order else np.nan
    print(
        f"\nBest overall: {best} (image AUROC {means.loc[best, 'i_auroc']:.3f}, AU-PRO "
        f"{means.loc[best, 'aupro']:.3f}, predict {means.loc[best, 'predict_s_per_image']:.2f} s per image). "
        f"Geometry only: {geometry:.3f} against FPFH alone {auroc.loc['fpfh_alone', 'geometry only']:.3f}; "
        f"colour only: {colour:.3f} against RGB alone {auroc.loc['rgb_alone', 'colour only']:.3f}."
    )
    print(
        f"Released BTF concatenation (early_raw): colour only {auroc.loc['early_raw', 'colour only']:.3f}, "
        f"geometry only {auroc.loc['early_raw', 'geometry only']:.3f}; normalised (early_unit): "
        f"{auroc.loc['early_unit', 'colour only']:.3f} and {auroc.loc['early_unit', 'geometry only']:.3f}."
    )

# %% [markdown]
# Why, in principle:
#
# * **Single modalities** fail where their sensor is blind: FPFH cannot tell a stained patch from a clean
#   one (every point is where it was), the RGB backbone cannot see a shallow dent.
# * **Late fusion with a maximum** keeps each branch's verdict: a defect that one modality sees clearly
#   gets that branch's high z-score, whatever the other says. Normalising on held-back normal samples is
#   what makes the two branches' numbers comparable; a *sum* adds the other branch's noise to every patch,
#   a *product* needs no calibration but lets a modality that sees nothing (score near its median) damp the
#   one that sees the defect.
# * **Early fusion** measures one distance over the concatenated vector, so whichever modality has the
#   larger spread decides it (the next section). Normalising restores the balance but a defect in one
#   modality is still diluted by the normal variation of the other.
# * **Middle fusion** (M3DM's contrastive MLPs) learns what the modalities share on normal data; its
#   LayerNorm removes each patch's offset and scale, which can hide a change that shifts all channels alike.
# * **CFM** flags patches where one modality no longer predicts the other: strong when the two are tightly
#   coupled on normal parts, weak where they are not (a stain on a flat region is predicted "normal" from
#   3D, but the flat 3D patch was never a good predictor of the cookie's varied colour either).
# * **Hybrid** (M3DM's linear one-class SVM over the two image scores) learns one weighting of the two
#   scores from the margin of the normal data. It only works once the two scores are on one scale: M3DM's
#   released code multiplies the RGB scores by 0.1 (hand-set for its features), the quick preset divides
#   each by its mean on held-back normal samples (`score_scaling`). It then behaves like a learned sum.

# %% [markdown]
# ## The scale knob: how unnormalised early fusion drowns a modality
#
# Early fusion with per-modality normalisation (`fusion_early`, `normalise="unit"`), then the 3D half
# multiplied by `scale_3d`: at 1 both modalities have the same root-mean-square norm; far above 1 the 3D
# part decides every distance and colour-only defects vanish; far below 1 the RGB part decides and dents
# vanish. The dotted line marks the balance; the printout says where the released raw concatenation sits.

# %%
SCALES = (
    [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0] if QUICK else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
)
if prepared and (kinds["kind"] != "unknown").any():
    target = prepared[0]
    sweep = []
    for scale in SCALES:
        run = comparison.run_strategy("early_unit", target, preset=PRESET, seed=SEED, device=device,
                                      scale_3d=scale)  # fmt: skip
        table = comparison.per_kind(run)
        sweep.append(table.assign(scale_3d=scale))
    sweep = pd.concat(sweep, ignore_index=True)
    display(scale_sweep(sweep, title=f"{target.category}: early fusion, 3D part scaled"))
    stats = runs[("early_unit", target.category)].detector.scaler.stats_
    raw_ratio = stats["xyz"][1] / stats["rgb"][1]
    print(
        f"On {target.category}, the FPFH part's RMS spread is {raw_ratio:.1f} times the RGB part's: the "
        f"released raw concatenation behaves like scale_3d ≈ {raw_ratio:.0f} on this plot."
    )

# %% [markdown]
# ## Time and memory
#
# Fit seconds (training-set feature extraction included), predict seconds per image (test feature
# extraction included) and the peak memory the fit added, mean over categories. The feature extraction
# (backbone + FPFH) is shared by all strategies and dominates the prediction time; the trained strategies
# (middle, CFM) pay for their MLPs at fit time only.

# %%
if prepared:
    cost = means[["fit_s", "predict_s_per_image", "peak_memory_mb"]]
    display(cost.round(3))
    display(cost_bars(cost))
    print(
        f"Feature extraction alone: {np.mean([p.test_extract_s_per_image for p in prepared]):.3f} s per test "
        "image on this machine."
    )

# %% [markdown]
# ## Published numbers
#
# MVTec 3D-AD means over its ten categories, **published**, not measured here: BTF's RGB-only and
# FPFH-only rows from its released code's README, BTF's RGB + FPFH {cite}`horwitz2023back`, M3DM
# {cite}`wang2023multimodal` and CFM {cite}`costanzino2023multimodal` from their papers' main tables. On
# real data the fused methods beat either modality alone, as here; their order differs from ours because
# M3DM and CFM use transformer features (ViT, Point-MAE) where we use a small CNN and FPFH, and because
# MVTec 3D-AD's defects are rarely of one modality only.

# %%
display(comparison.PUBLISHED.set_index("method"))
published_bars(comparison.PUBLISHED)

# %% [markdown]
# ## Try this
#
# * `comparison.run_strategy("late_max", prepared[0], normalise="quantile")`: median / 99th-percentile
#   normalisation instead of mean / std — more robust to a few large held-back scores.
# * `comparison.run_strategy("hybrid", prepared[0], decision_data="train")`: M3DM's released choice of
#   fitting the decision layer on the training samples themselves; their scores are too small (the bank
#   contains them), so the weights change.
# * Raise `SCALES` to 300: past the released raw concatenation's equivalent scale the colour-only AUROC
#   falls to chance.
#
# ## References
#
# The works cited above are listed, with full details, in the book's bibliography.
