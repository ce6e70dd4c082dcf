"""One-class classification (survey Table 4): a discriminator or density learns normal vs simulated
anomalies (the simulations themselves are Table 9). One file per method; the registry names them.

* :class:`~.cutpaste.CutPaste` (``cutpaste.py``, GDE in ``gde.py``) — fine-tune on normal / CutPaste /
  scar, then Gaussian densities on image and patch embeddings.
* :class:`~.simplenet.SimpleNet` (``simplenet.py``) — adaptor + discriminator on frozen patch features,
  Gaussian feature noise as anomalies, truncated L1 loss.
* :class:`~.glass.GLASS` (``glass.py``) — SimpleNet's set-up with gradient-ascent feature anomalies and
  Perlin texture anomalies on the same discriminator.
* ``discriminator.py`` — what SimpleNet and GLASS share; ``toy.py`` — the 2-D picture of chapter 05.
* :class:`~.simulation_trained.SimulationTrainedHead` and ``transfer.py`` — chapter 14's controlled
  comparison of simulations (``simulation_head`` in the registry).
"""
