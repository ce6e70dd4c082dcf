"""Teacher-student networks (survey Table 4): a student trained on normal data only disagrees with
its teacher on anomalies.

* :class:`STFPM` (``stfpm.py``) — forward distillation: a student of the teacher's architecture, from
  scratch, matches normalised features at several stages; map = product of per-stage cosine distances.
* :class:`RD4AD` (``rd4ad.py``) — reverse distillation: teacher stages -> one-class bottleneck -> a
  decoder that rebuilds the stages; map = sum of per-stage cosine distances.
* :class:`EfficientAD` (``efficientad.py``) — small patch description networks (33 px) plus an
  autoencoder for logical anomalies; quantile-normalised maps.

Shared plumbing in ``distillation.py``. Build them by name with :func:`uiad_lite.methods.create`.
"""

from uiad_lite.methods.teacher_student.efficientad import EfficientAD, quantile_normalise, small_pdn
from uiad_lite.methods.teacher_student.rd4ad import OCBE, RD4AD, MirrorDecoder
from uiad_lite.methods.teacher_student.stfpm import STFPM

__all__ = ["OCBE", "RD4AD", "STFPM", "EfficientAD", "MirrorDecoder", "quantile_normalise", "small_pdn"]
