"""The survey's Table 3 (Lin et al., 2024, Section 2.3) in our own words, as a table.

One row per metric: the level it works at, the question it answers, its formula, which thresholds
it uses, the key :func:`uiad_lite.metrics.evaluate` returns for it and the function computing it
alone. Image-level AP is not in the survey's table; it is the P-AP formula applied to image scores,
reported by many papers. Point-level keys (``pt_auroc``, ``pt_ap``) are the pixel formulas over
3D points and are left out here.

F1-max and the best IoU choose their threshold on the very test set they grade, so they are
optimistic (an oracle threshold no deployed detector has); :data:`TEST_SET_THRESHOLD` names their
keys and :func:`label_test_set_thresholds` renames those columns in a results table so that every
table shown says so.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ("level", "metric", "question it answers", "formula", "thresholds used", "key", "function")

_ROWS = (
    ("image", "I-AUROC", "Does a defective image score above a good one?",
     "∫ TPR d(FPR)", "every threshold", "i_auroc", "image_auroc"),
    ("image", "F1-max", "How good is the best single threshold?",
     "max over t of 2PR / (P + R)", "the best one, picked on the test set (optimistic)",
     "i_f1_max", "f1_max"),
    ("image", "AP", "How precise is the ranking while recall grows?",
     "Σ (R_n − R_{n−1}) P_n", "every threshold", "i_ap", "image_ap"),
    ("pixel", "P-AUROC", "Does a defective pixel score above a normal one? Every pixel counts once.",
     "∫ TPR d(FPR) over pixels", "every threshold", "p_auroc", "pixel_auroc"),
    ("pixel", "AU-PRO", "How much of each defect is covered, every defect counting the same, "
     "while few normal pixels are flagged?",
     "(1/fl) ∫₀^fl (1/K) Σ_k |P ∩ C_k| / |C_k| d(FPR)", "FPR up to fl = 0.3", "aupro", "aupro"),
    ("pixel", "P-AP", "How precise are the flagged pixels? Every false alarm counts, and normal pixels "
     "outnumber defective ones by far.",
     "Σ (R_n − R_{n−1}) P_n over pixels", "every threshold", "p_ap", "pixel_ap"),
    ("pixel", "IoU", "How well does the flagged area match the defect area?",
     "TP / (TP + FP + FN)", "the best one, picked on the test set (optimistic)", "iou", "best_iou"),
    ("instance", "IAP", "How precise are the pixels when each defect counts as found "
     "(more than half of it flagged), averaged over defects?",
     "(1/N) Σ_i P(i)", "one per defect", "iap", "instance_ap"),
    ("instance", "IAP@k", "How precise are the pixels once k% of the defects are found?",
     "P where instance recall reaches k", "one (k = 90%)", "iap90", "iap_at_recall"),
)


#: Keys of :func:`uiad_lite.metrics.evaluate` whose threshold is chosen on the test set, with the
#: column name :func:`label_test_set_thresholds` gives them.
TEST_SET_THRESHOLD: dict[str, str] = {
    "i_f1_max": "i_f1_max (test-set threshold)",
    "iou": "iou (best, test-set threshold)",
}


def label_test_set_thresholds(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns of :data:`TEST_SET_THRESHOLD` renamed to say that their threshold
    was picked on the test set (a renamed copy; other columns and the index are untouched)."""
    return table.rename(columns=TEST_SET_THRESHOLD)


def metric_summary() -> pd.DataFrame:
    """Table 3 as a data frame with the columns :data:`COLUMNS`, image level first."""
    return pd.DataFrame(list(_ROWS), columns=list(COLUMNS))
