"""One-class classification with simulated negatives (survey Table 4, "one-class classification"; the
simulations themselves are Table 9): a discriminator on frozen features learns normal vs simulated."""

from uiad_lite.methods.one_class.simulation_trained import SimulationTrainedHead

__all__ = ["SimulationTrainedHead"]
