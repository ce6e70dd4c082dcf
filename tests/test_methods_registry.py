"""methods.create builds every registered detector with both presets; catalogue() describes them all."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pandas as pd
import pytest

from uiad_lite import methods, survey
from uiad_lite.methods.registry import REGISTRY

BIB = Path(__file__).resolve().parents[1] / "book" / "references.bib"
NAMES = ["pixel_gaussian", "padim", "patchcore", "cfa", "simulation_head"]  # chapters 00, 03, 14
ALL = sorted(REGISTRY)  # every registered detector, these and whatever later chapters add


def on_cpu(name: str) -> dict:
    """device="cpu" for the methods that take a device."""
    accepts = "device" in inspect.signature(methods.detector_class(name).__init__).parameters
    return {"device": "cpu"} if accepts else {}


def weights_present(name: str) -> bool:
    from uiad_lite.features import backbone

    try:
        backbone(name, (1,), device="cpu")
    except FileNotFoundError:
        return False
    return True


MISSING = r"no pretrained weights for timm model '[^']+' on this machine"
TINY_CATEGORY = {"image": "brick", "image,xyz": "cookie", "xyz": "cookie", "points": "panel"}


@pytest.mark.parametrize("name", ALL)
def test_create_builds_every_method_with_the_quick_preset(name) -> None:
    detector = methods.create(name, preset="quick", **on_cpu(name))
    assert type(detector).__name__ == REGISTRY[name].target.split(":")[1]
    for key, value in methods.preset_settings(name, "quick").items():
        if name in NAMES and key not in ("backbone", "layers", "image_size"):
            assert getattr(detector, key) == value, key
    if name in ("padim", "patchcore", "cfa"):
        assert detector.backbone.info.name == "efficientnet_lite0" and detector.image_size == 160


@pytest.mark.parametrize("name", ALL)
def test_create_with_the_paper_preset_builds_or_says_which_weights_are_missing(name) -> None:
    """The paper preset builds; where its pretrained weights are not on this machine, the error says
    which and how to get them: at create() for detectors that build their network there, else at the
    start of fit() (before any training), and never a silent fall-back to random weights."""
    settings = methods.preset_settings(name, "paper")
    kwargs = on_cpu(name)
    wanted = settings.get("backbone")
    if isinstance(wanted, str) and not weights_present(wanted):
        try:
            detector = methods.create(name, preset="paper", **kwargs)
        except FileNotFoundError as error:
            assert re.search(MISSING, str(error)) and wanted in str(error), str(error)
        else:  # built lazily: fit must refuse before it trains
            from uiad_lite import data

            tiny = data.load("synthetic", category=TINY_CATEGORY[REGISTRY[name].needs], size="tiny")
            with pytest.raises(FileNotFoundError, match=MISSING):
                detector.fit(tiny.train)
        # the same preset with random weights: the papers' layers and sizes really are what it builds
        detector = methods.create(name, preset="paper", pretrained=False, **kwargs)
    else:
        detector = methods.create(name, preset="paper", **kwargs)
    if name == "patchcore":
        assert detector.extractor.out_channels == 1024 and detector.backbone.info.channels == (512, 1024)
        assert (detector.sampler, detector.distance, detector.image_score) == (
            "approximate",
            "squared",
            "max",
        )
    if name in ("padim", "cfa"):
        assert detector.backbone.info.module_names == ("layer1", "layer2", "layer3")
    if name == "simulation_head":
        assert detector.hidden == 1024 and detector.image_size == 256


def test_overrides_beat_the_preset_and_bad_names_get_one_line_errors() -> None:
    detector = methods.create(
        "patchcore", preset="quick", coreset_ratio=0.01, device="cpu", image_score="reweighted"
    )
    assert detector.coreset_ratio == 0.01 and detector.image_score == "reweighted"
    assert methods.preset_settings("patchcore", "quick")["coreset_ratio"] == 0.1  # the preset is untouched
    errors = [
        (lambda: methods.create("PatchCore"), f"unknown method 'PatchCore'; choose one of {ALL}"),
        (
            lambda: methods.create("patchcore", preset="fast"),
            "unknown preset 'fast' for 'patchcore'; choose one of ['quick', 'paper']",
        ),
        (
            lambda: methods.create("cfa", radius_=1.0),
            "cfa does not take ['radius_']; its options are ['backbone', ",
        ),
    ]
    for build, message in errors:
        with pytest.raises(ValueError) as caught:
            build()
        text = str(caught.value)
        assert "\n" not in text and text.startswith(message), text


def test_catalogue_lists_every_method_with_survey_metadata() -> None:
    table = methods.catalogue()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [
        "name",
        "survey_method",
        "family",
        "subfamily",
        "setting",
        "chapter",
        "needs",
        "trains",
        "reference",
    ]
    assert list(table["name"])[: len(NAMES)] == NAMES and table["name"].is_unique
    assert all(name == name.lower() for name in table["name"])
    assert set(table["setting"]) <= {"rgb", "3d", "multimodal"}
    assert all(set(needs.split(",")) <= {"image", "xyz", "points"} for needs in table["needs"])
    mine = table[table["name"].isin(NAMES)]
    assert dict(zip(mine["name"], mine["trains"], strict=True)) == {
        "pixel_gaussian": False,
        "padim": False,
        "patchcore": False,
        "cfa": True,
        "simulation_head": True,
    }
    keys = set(re.findall(r"@\w+\{([^,]+),", BIB.read_text(encoding="utf-8")))
    rows = survey.methods()
    chapters = {path.stem for path in (BIB.parents[1] / "notebooks").glob("*.py")}
    for row in table.itertuples():
        assert row.chapter in chapters, row.chapter
        assert row.reference == "" or row.reference in keys, row.reference
        if row.survey_method:  # a method of the survey: its family, sub-family and citation are the survey's
            listed = rows[(rows["method"] == row.survey_method) & (rows["subfamily"] == row.subfamily)]
            assert len(listed) == 1 and listed["family"].iloc[0] == row.family, row.name
            assert listed["setting"].iloc[0].lower() == row.setting
            assert survey.cite_key(row.survey_method) == row.reference
    assert table.set_index("name").loc["patchcore", "survey_method"] == "PatchCore"
