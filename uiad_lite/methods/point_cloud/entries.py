"""This family's detectors in the registry (collected by :mod:`uiad_lite.methods.registry`)."""

from __future__ import annotations

from uiad_lite.methods.registry_entry import MethodEntry  # noqa: F401

ENTRIES: list[MethodEntry] = []
