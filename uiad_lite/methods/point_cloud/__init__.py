"""Point-cloud detectors (survey Sec. 4, Table 7, 3D setting).

* :class:`BTFRaw`, :class:`BTFFPFH` (``btf.py``) — PatchCore on raw / FPFH patch features of organised clouds.
* :class:`Reg3DAD` (``reg3dad.py``) — registration to training templates, then a point-level memory bank.
* :class:`CPMF` (``cpmf.py``) — multi-view rendered 2D features + FPFH per point in a PatchCore bank; the
  renderer is :mod:`uiad_lite.features.multiview`.

Shared pieces: ``registration.py`` (RANSAC on FPFH, then ICP, with open3d); 3D descriptors live in
:mod:`uiad_lite.features.point_features`. Build them by name with :func:`uiad_lite.methods.create`.
"""

from uiad_lite.methods.point_cloud.btf import BTF, BTFFPFH, BTFRaw
from uiad_lite.methods.point_cloud.cpmf import CPMF
from uiad_lite.methods.point_cloud.reg3dad import Reg3DAD
from uiad_lite.methods.point_cloud.registration import RegistrationResult, register

__all__ = ["BTF", "BTFFPFH", "BTFRaw", "CPMF", "Reg3DAD", "RegistrationResult", "register"]
