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
# # Datasets: what the detectors learn from and are tested on
#
# Every number in this workbook is measured on a dataset, and the dataset decides what the number
# means. The protocol of unsupervised industrial anomaly detection is always the same: a **training
# split of normal samples only**, and a **test split that mixes normal and defective samples**, where each
# defect comes with a pixel mask (or per-point labels for a point cloud). Beyond that, the datasets
# differ in almost everything that matters to a method: the modality (colour images, point clouds, or
# both), how many categories and defect types there are, whether the defects are real or rendered, and
# how large they are. This chapter looks at them closely before any detector is trained: the survey's
# table of datasets {cite}`lin2024survey`, the synthetic benchmark that runs everywhere, samples of
# each setting, and the sizes of the defects, which explain why two pixel metrics can disagree.

# %% tags=["parameters"]
DATASET = "synthetic"  # any name in uiad_lite.data.DATASETS
DATA_ROOT = None  # folder of a real dataset (None: $UIAD_DATA, or the embedded synthetic benchmark)
CATEGORIES = None  # list of category names (None: every category of the dataset)
QUICK = True  # True: about a minute on two CPU cores; False: every category and the full-size data
DEVICE = "auto"  # not used here: nothing is trained in this chapter
SEED = 0

# %%
import inspect

import numpy as np
import pandas as pd
from IPython.display import display

import uiad_lite.plots  # noqa: F401  (selects the renderer that keeps figures in the book)
from uiad_lite import data, survey
from uiad_lite.data import statistics
from uiad_lite.data.synthetic_depth import CHANGES as SYNTHETIC_RGBD_CHANGES
from uiad_lite.plots import datasets as dataset_plots
from uiad_lite.plots.survey import datasets_scatter

SIZE = "quick" if QUICK else "full"
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## Where this sits: the survey's Table 2
#
# The survey collects eighteen datasets in its Table 2 and sorts them by setting. In **RGB**, MVTec AD
# {cite}`bergmann2019mvtec` came first and is still the reference; MVTec LOCO AD {cite}`bergmann2022beyond`
# adds *logical* anomalies (a missing or misplaced part, where every pixel on its own looks normal);
# VisA {cite}`zou2022spot` brings objects with complex structure and several instances or poses per image.
# In **3D**, Real3D-AD {cite}`liu2023real3d` is the first real high-resolution point-cloud dataset and
# Anomaly-ShapeNet {cite}`li2023scalable` the first large synthetic one. For **RGB+3D**, MVTec 3D-AD
# {cite}`bergmann2021mvtecb` pairs each colour image with an organised point cloud and is the one most
# papers report on; Eyecandies {cite}`bonfiglioli2022eyecandies` is rendered, and PD-REAL
# {cite}`qin2023image` is built cheaply from toy models.
#
# The table below is the survey's, read from `uiad_lite.survey`; the last three columns say whether
# uiad-lite can load the dataset (`uiad_name` for `data.load`) and whether the download is automatic.

# %%
catalogue = statistics.survey_catalogue()
catalogue[["name", "setting", "year", "type", "n_train", "n_test_good", "n_test_anomaly", "n_total",
           "n_classes", "n_anomaly_types", "modality", "uiad_name", "loader", "download"]]

# %% [markdown]
# Use the menu to switch the bars between total size, training and test counts, categories and defect
# types; hatched bars are synthetic datasets. The scatter below puts the same datasets on a time axis.

# %%
dataset_plots.datasets_explorer(catalogue).show()

# %%
datasets_scatter(survey.datasets()).show()

# %%
by_setting = catalogue.groupby("setting", sort=False).agg(
    datasets=("name", "size"), median_total=("n_total", "median"), median_train=("n_train", "median"),
    largest=("n_total", "max"))
with_validation = catalogue.loc[catalogue["n_val"].notna(), "name"].tolist()
print("Datasets with a validation split:", ", ".join(with_validation))
print("Median size per setting (the survey's counts):")
display(by_setting)

# %% [markdown]
# Two things stand out. The 3D datasets are small: Real3D-AD has 48 training clouds for 12 categories,
# four per category, so a 3D method must learn "normal" from a handful of scans. And only four datasets
# set aside a validation split (printed above); elsewhere a threshold or hyper-parameter chosen on the test
# set leaks information into the result, which is worth remembering when reading published tables.
#
# ### Where Table 2 needs a second look
#
# The table is kept exactly as printed, and uiad-lite keeps one copy of it: `data.info(name).survey_stats`,
# the year and the real/synthetic flag of every loadable dataset are read from `uiad_lite.survey`, not typed
# a second time. Three kinds of entries do not mean what they seem, and the cell below finds them in the
# table itself: counts that do not add up to the printed total; datasets dated a year apart from the paper
# the survey cites for them (tables tend to date a dataset by its preprint, the reference list by its
# venue); and datasets with no good test images at all.

# %%
table2 = survey.datasets()
reference_year = survey.references().set_index("number")["year"]
parts = table2[["n_train", "n_test_good", "n_test_anomaly", "n_val"]].fillna(0).sum(axis=1)
second_look = pd.concat([
    table2.loc[parts != table2["n_total"]].assign(
        issue="counts do not add up", table_says=lambda t: t["n_total"].astype(str) + " in total",
        elsewhere=parts[parts != table2["n_total"]].astype(str) + " = sum of its columns"),
    table2.loc[table2["year"] != table2["reference"].map(reference_year)].assign(
        issue="year differs from the cited paper", table_says=lambda t: t["year"].astype(str),
        elsewhere=lambda t: t["reference"].map(reference_year).astype(str) + " in reference [" +
        t["reference"].astype(str) + "]"),
    table2.loc[table2["n_test_good"] == 0].assign(
        issue="no good test images", table_says=lambda t: t["n_train"].astype(str) + " train, 0 good test",
        elsewhere="normal images pooled under train"),
])[["name", "issue", "table_says", "elsewhere"]]
print(f"{len(second_look)} entries of Table 2 to read with care (survey.ERRATA explains each):")
second_look.set_index("name")

# %% [markdown]
# The zero good test images of VisA and Real-IAD are the survey's pooling, not the split methods are
# evaluated on: an image AUROC needs good test images. VisA's "training" count in Table 2 is the number
# of all its normal images, and its one-class split (`split_csv/1cls.csv`, which the loader reads) moves
# part of them into the test set. Compared with files on disk (the last section), VisA therefore shows
# fewer training and more good test images than Table 2, by the same amount, with nothing missing.
# MVTec 3D-AD's printed total is short of the sum of its own columns (both are in the table above). The
# years matter only for the time axis of the scatter above (Real3D-AD and Anomaly-ShapeNet are 2023
# papers that the table dates 2024).
#
# ## The idea: what a sample is, and how big a defect is
#
# A dataset category is a pair of sets: $\mathcal{D}_{\text{train}} = \{x_1, \dots, x_N\}$, all normal, and
# $\mathcal{D}_{\text{test}} = \{(x_j, y_j, M_j)\}$ with an image label $y_j \in \{0, 1\}$ and a mask
# $M_j \in \{0,1\}^{H \times W}$ (all zeros when $y_j = 0$). For one defective sample, two numbers
# describe the defect's size: its **area fraction** $a_j = |M_j| / (HW)$, and its **regions**, the
# connected components $C_{j,1}, C_{j,2}, \dots$ of $M_j$ (8-connected, as AU-PRO counts them
# {cite}`bergmann2021mvteca`).
#
# Why both matter: at a threshold $t$ with prediction $P$, pixel-level recall weighs every defect pixel
# once, while the per-region overlap behind AU-PRO weighs every *region* once,
#
# $$\mathrm{TPR}_{\text{pixel}} = \frac{\sum_k |P \cap C_k|}{\sum_k |C_k|}, \qquad
#   \mathrm{PRO} = \frac{1}{K} \sum_{k=1}^{K} \frac{|P \cap C_k|}{|C_k|}.$$
#
# If the regions are of very different sizes, a detector that misses the small ones loses little pixel
# recall and a lot of PRO. The last section measures how unequal the regions of a dataset are.
#
# ## The data in code
#
# Everything goes through one function; a `Sample` carries whatever modalities the dataset has. The
# loaders index the files first and read a sample only when it is accessed (`split.test.defects` and
# `split.test.labels` cost nothing). The statistics of this chapter are in `uiad_lite/data/statistics.py`,
# its figures in `uiad_lite/plots/datasets.py`.

# %%
print(inspect.getdoc(data.load), end="\n\n")
print("Sample fields:", ", ".join(data.Sample.__dataclass_fields__))
groups = statistics.settings_of(DATASET, CATEGORIES, DATA_ROOT)
for setting, names in groups.items():
    print(f"{setting:>6}: {', '.join(names) if names else '(none in ' + DATASET + ')'}")


def load(category: str) -> data.DatasetSplits:
    return data.load(DATASET, root=DATA_ROOT, category=category, size=SIZE)


# %% [markdown]
# ## What is in the benchmark
#
# One row per category: the training and validation counts, the normal and defective test samples, and
# the defect types with their counts (`composition` keeps one column per defect type for further use).
# The counts come from the file index, so no image is read. The embedded synthetic benchmark mirrors
# the three real layouts: four RGB categories written like MVTec AD (two textures, `brick` and `grass`;
# two objects, `washer` and `plate`, the plate's `missing_bolt` and `misplaced_bolt` being logical anomalies
# in the LOCO sense), two RGB-D categories written like MVTec 3D-AD (`cookie`, `tablet`), and two
# point-cloud categories written like Real3D-AD with four training templates each (`panel`, `capsule`).
# Run with `DATASET` set to a real dataset and the same table counts its files.

# %%
composition = statistics.composition(DATASET, CATEGORIES, DATA_ROOT, size=SIZE)
statistics.composition_summary(composition)

# %% [markdown]
# ## A gallery: normal and defective samples with their masks
#
# One row per defect type, three samples each, drawn with the chapter's seed; the cyan line runs just
# *outside* the ground-truth mask, so the defect itself is shown untouched, and the title gives its share
# of the image. Two categories are shown when there are several: the first and the last of the list.

# %%
if groups["rgb"]:
    for category in dict.fromkeys([groups["rgb"][0], groups["rgb"][-1]]):
        split = load(category)
        picks = statistics.examples_per_defect(split.test.defects, 3, rng, max_types=6)
        rows = {defect: [split.test[i] for i in positions] for defect, positions in picks.items()}
        dataset_plots.sample_gallery(rows, max_side=96, title=f"{DATASET} / {category}: test samples").show()
else:
    note = " (the RGB-D gallery below shows its images)" if groups["rgbd"] else ""
    print(f"{DATASET} has no RGB-only categories: gallery skipped{note}.")

# %% [markdown]
# ## RGB-D: colour, depth and the cloud behind them
#
# An RGB-D sample (MVTec 3D-AD format) is an image plus an *organised* point cloud: one $(x, y, z)$ per
# pixel, zeros where the sensor returned nothing (black in the depth pictures). The survey motivates the
# multimodal setting with MVTec 3D-AD's cookie: a chocolate-coloured contamination and a hole look much
# alike in the image, yet only the hole changes the shape {cite}`lin2024survey`; BTF showed that 3D
# features catch what colour features miss {cite}`horwitz2023back`. The synthetic `cookie` and `tablet`
# are built around exactly that: a *dent* or *bump* changes only the geometry, a dark *stain* only the
# colour, a *hole* both. Each sample below is shown as its image and a shaded rendering of its depth.

# %%
if groups["rgbd"]:
    rgbd_category = groups["rgbd"][0]
    rgbd_split = load(rgbd_category)
    picks = statistics.examples_per_defect(rgbd_split.test.defects, 2, rng, max_types=6)
    rows = {defect: [rgbd_split.test[i] for i in positions] for defect, positions in picks.items()}
    dataset_plots.sample_gallery(rows, max_side=96, show_depth=True,
                                 title=f"{DATASET} / {rgbd_category}: image and depth per defect type").show()
else:
    rgbd_split = None
    print(f"{DATASET} has no RGB-D categories: the RGB-D sections are skipped.")

# %% [markdown]
# One sample three ways: the image, the $z$ value of every pixel (hover to read it; blank where missing),
# and the organised cloud in 3D with the ground-truth points in red (drag to rotate; at most 5000 points on a
# regular grid, and every defect point on that grid kept). A geometric defect is the one to look at here.

# %%
if rgbd_split is not None:
    defects = rgbd_split.test.defects
    geometric = [d for d in ("dent", "bump", "hole") if d in defects]
    chosen = defects.index(geometric[0]) if geometric else int(np.argmax(rgbd_split.test.labels))
    dataset_plots.rgbd_view(rgbd_split.test[chosen], max_side=112, max_points=5000, seed=SEED).show()

# %% [markdown]
# Which modality shows which defect can be *measured*. For every defective RGB-D test sample,
# `statistics.modality_contrast` compares the defect with a thin ring of surface around it: in colour, the
# distance between the median colours inside and in the ring, divided by the ring's own colour spread; in
# depth, the residual of the points inside from a quadratic surface fitted robustly to the ring (least
# median of squares, so a ring that reaches over the object's edge does not bend the fit), divided by the
# ring's residual spread. Both are signal-to-noise ratios; above 3 we call the defect visible in that
# modality. For the synthetic benchmark the generator's own record of what it changed is shown beside
# the measurement.

# %%
if rgbd_split is not None:
    contrast = pd.concat([statistics.modality_contrast(load(c).test) for c in groups["rgbd"]],
                         ignore_index=True)
    visibility = pd.crosstab(contrast["defect"], contrast["visible_in"])
    if DATASET == "synthetic":
        visibility["changed by the generator"] = [
            " + ".join({"rgb": "colour", "xyz": "depth"}[m] for m in SYNTHETIC_RGBD_CHANGES[d])
            for d in visibility.index]
    display(visibility)
    dataset_plots.modality_scatter(contrast).show()

# %%
if rgbd_split is not None and DATASET == "synthetic":
    recorded = {("xyz",): "depth", ("rgb",): "colour", ("rgb", "xyz"): "both"}
    expected = contrast["defect"].map(lambda d: recorded[tuple(sorted(SYNTHETIC_RGBD_CHANGES[d]))])
    agree = int((contrast["visible_in"] == expected).sum())
    print(f"{agree} of {len(contrast)} defective samples ({agree / len(contrast):.0%}) are measured visible "
          "exactly in the modalities the generator changed.")

# %% [markdown]
# On the synthetic data the printed share says how often the measurement agrees with the construction:
# stains belong in the "colour" corner, dents and bumps in "depth", holes in "both". The exceptions are
# instructive.
# A shallow dent on a curved or bevelled part of the surface can fall below the threshold even in depth,
# and a hole's dark colour can be close to a dark rim in the image. A detector that reads only one
# modality is blind to a whole corner of this plot, which is the argument for the multimodal chapters.
#
# ## Point clouds coloured by ground truth
#
# In the 3D setting (Real3D-AD format) a sample is an unordered cloud of points, and the ground truth is
# one label per point. A good sample and one of each defect type; at most 2500 points per cloud, every
# defect point kept, so a small bulge stays visible. Drag to rotate, scroll to zoom.

# %%
if groups["points"]:
    cloud_split = load(groups["points"][0])
    picks = statistics.examples_per_defect(cloud_split.test.defects, 1, rng, max_types=4)
    clouds = [cloud_split.test[positions[0]] for positions in picks.values()]
    title = f"{DATASET} / {groups['points'][0]}: point clouds, defect points in red"
    dataset_plots.point_clouds(clouds, max_points=2500, seed=SEED, title=title).show()
else:
    print(f"{DATASET} has no point-cloud categories: the point-cloud section is skipped.")

# %% [markdown]
# ## How big are the defects?
#
# `statistics.defect_statistics` reads every defective test sample and records its area fraction and its
# regions (for clouds: the share of defect points, and groups of neighbouring defect points). In quick
# mode a real dataset is summarised over its first four categories per setting.

# %%
limit = 4 if QUICK else None
stats_categories = [c for names in groups.values() for c in names[:limit]]
sample_stats = pd.concat([statistics.defect_statistics(load(c).test, anomalous_only=True)
                          for c in stats_categories], ignore_index=True)
regions = statistics.region_table(sample_stats)
summary = sample_stats.groupby("defect").agg(
    samples=("position", "size"), median_area_percent=("area_fraction", lambda a: 100 * a.median()),
    smallest_area_percent=("area_fraction", lambda a: 100 * a.min()), median_regions=("regions", "median"))
summary.round(3)

# %%
dataset_plots.defect_sizes(sample_stats, regions).show()

# %%
area = 100 * sample_stats["area_fraction"]
print(f"Defect area over {len(sample_stats)} defective samples: {area.min():.3g}% to {area.max():.3g}% "
      f"of the sample, median {area.median():.3g}%; {int((area < 1).sum())} of them under 1%.")
per_category = regions.groupby("category", sort=False)["units"].apply(statistics.pixel_share_of_smallest)
print("Share of the defect pixels (points) held by the smaller half of the regions, per category:")
print((100 * per_category).round(1).astype(str).add(" %").to_string())

# %% [markdown]
# Defects are small: the printed range shows how many cover less than one percent of the sample, and
# how far apart the smallest and the largest are. In the lower panel, each line sorts a category's regions
# from small to large; the further it sags below the diagonal, the fewer defect pixels the small regions
# hold.
# The printed shares make it concrete: a detector that misses exactly the smaller half of the regions
# loses that share of the defect pixels, so pixel recall drops by that much, while the per-region overlap
# drops by half, because every region counts the same. That is how a method can report a high pixel
# AUROC and a clearly lower AU-PRO on the same maps; the metrics chapter builds this case with the real
# metrics. In the synthetic clouds, a `missing` patch is labelled by the ring of points around the hole
# (the removed points cannot carry a label), so its "area" is that ring's share of the cloud.
#
# ## Plugging in a real dataset
#
# The catalogue lists every dataset uiad-lite knows, the loader for it, and whether it can be fetched
# automatically (`direct`) or needs a licence form first (`manual`: the command prints the steps).

# %%
pd.DataFrame(data.catalogue())[["name", "title", "setting", "kind", "loader", "download", "n_categories",
                                "licence"]]

# %% [markdown]
# From a terminal:
#
# ```bash
# uiad-lite data list                                    # the table above
# uiad-lite data download btad --root /data/btad         # direct download, SHA-256 checked, extracted
# uiad-lite data download mvtec_3d --root /data/mvtec3d  # prints the licence steps; rerun once the
#                                                        # archive is saved there
# uiad-lite data verify mvtec_3d --root /data/mvtec3d    # checks the layout and reads one sample
# export UIAD_DATA=/data                                 # $UIAD_DATA/<name> is then found without --root
# uiad-lite run 01 --dataset mvtec_3d --data-root /data/mvtec3d   # this chapter on the real data
# ```
#
# In a notebook, set `DATASET = "mvtec_3d"` and `DATA_ROOT = "/data/mvtec3d"` in the parameters cell
# (or leave `DATA_ROOT = None` with `UIAD_DATA` set). The chapter then picks the categories of the
# dataset's own setting and says which sections it skips: an RGB dataset has no depth, a point-cloud
# dataset no images.
#
# ## Published numbers
#
# For a real dataset the counts on disk are compared with the survey's Table 2 (counted over all of its
# categories, so a subset shows up as a negative difference). Two differences are expected and are not
# missing files: VisA's train and good-test counts move by the same amount in opposite directions, because
# Table 2 pools all normal images under "train"; MVTec 3D-AD's printed total does not match its own columns
# (see "Where Table 2 needs a second look"). The synthetic benchmark has no published counts.

# %%
if data.info(DATASET).survey_stats:
    display(statistics.compare_with_survey(DATASET, composition))
else:
    anomalous = int(composition["test_anomalous"].sum())
    print(f"{DATASET}: no counts in the survey's Table 2 to compare with; "
          f"{anomalous} defective test samples in {len(composition)} categories here.")

# %% [markdown]
# ## Try this
#
# * Change `SEED` and rerun the galleries: other samples of each defect type are drawn. Look for the
#   smallest scratch on `brick`: at 96 pixels per panel it is barely a line, and a detector whose feature
#   map has 28×28 cells (stride 8 on a 224-pixel image) sees it in one or two cells.
# * Set `CATEGORIES = ["tablet"]`: the tablet is pale and smooth, so its stains stand out far more in
#   colour than on the freckled cookie (compare the colour contrast in the scatter).
# * Raise the visibility threshold in `statistics.modality_contrast(..., threshold=10)` and see which
#   defects drop to "neither": those are the subtle ones a detector must still find.
# * With MVTec 3D-AD on disk, run the chapter with `DATASET = "mvtec_3d"` and compare the cookie's real
#   `contamination` and `hole` samples in the modality plot with the synthetic ones.
#
# ## References
#
# The works cited here are listed in the book's bibliography.
