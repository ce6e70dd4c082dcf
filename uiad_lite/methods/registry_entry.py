"""One registry entry (:class:`MethodEntry`) and the preset names: apart from ``registry.py`` so that each
family's ``entries.py`` can import it without importing the registry that collects them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("quick", "paper")
PAPER_BACKBONE = "wide_resnet50_2.tv_in1k"  # torchvision's ImageNet weights, as the papers' code loads them
QUICK_BACKBONE = "efficientnet_lite0"  # ships offline with the package's dependencies


@dataclass(frozen=True)
class MethodEntry:
    """A registered detector: where its class lives, its survey metadata and its two presets."""

    name: str
    target: str  # "module:Class"
    survey_method: str  # the name in the survey's tables ("" when the survey does not list it)
    family: str
    subfamily: str
    setting: str  # rgb / 3d / multimodal
    chapter: str
    needs: str  # image / xyz / points (comma-separated when several)
    trains: bool  # True when fit() runs a gradient-based training loop
    reference: str  # BibTeX key in book/references.bib ("" for the package's own baselines)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load(self) -> type:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


