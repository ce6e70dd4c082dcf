"""The flow layers of uiad_lite.methods.flows.coupling: exact inverse and log-det equal to autograd's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uiad_lite.methods.flows.coupling import (
    ActNorm,
    AffineCoupling,
    FixedPermutation,
    FlowSequence,
    all_in_one_block,
    conv_subnet,
    fc_subnet,
    gaussian_log_likelihood,
)


def _randomise(module: nn.Module, seed: int = 0) -> None:
    """Move every parameter away from its (often identity) initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def _autograd_log_det(layer, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """log|det J| of the layer at each sample, from the full Jacobian (float64)."""
    values = []
    for index in range(x.shape[0]):
        sample = x[index : index + 1]
        c = None if cond is None else cond[index : index + 1]

        def f(v, c=c, shape=sample.shape):
            return layer(v.reshape(shape), c)[0].reshape(-1)

        jacobian = torch.autograd.functional.jacobian(f, sample.reshape(-1))
        values.append(torch.linalg.slogdet(jacobian)[1])
    return torch.stack(values)


def _vector_layers():
    torch.manual_seed(0)
    return {  # built in float64 so that the random orthogonal matrix is orthogonal to float64 precision
        "actnorm": ActNorm(5),
        "permutation": FixedPermutation(5, seed=3),
        "soft_permutation": FixedPermutation(5, seed=3, soft=True),
        "coupling_tanh": AffineCoupling(5, fc_subnet(2.0), clamp=1.9),
        "coupling_atan": AffineCoupling(5, fc_subnet(2.0), clamp=3.0, clamp_mode="atan"),
        "conditional": AffineCoupling(5, fc_subnet(2.0), cond_channels=4, clamp=1.9),
        "stack": FlowSequence(
            [
                layer
                for k in range(3)
                for layer in all_in_one_block(
                    5, fc_subnet(2.0), cond_channels=4, seed=k, soft_permutation=k == 1
                )
            ]
        ),
    }


@pytest.mark.parametrize("name", list(_vector_layers()))
def test_vector_layer_inverse_and_log_det(name):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        layer = _vector_layers()[name]
    finally:
        torch.set_default_dtype(default)
    _randomise(layer, seed=1)
    layer.eval()
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cond = torch.randn(3, 4, dtype=torch.float64) if name in ("conditional", "stack") else None
    y, log_det = layer(x, cond)
    assert log_det.shape == (3,)
    assert not torch.allclose(y, x)  # the layer does something
    torch.testing.assert_close(layer.inverse(y, cond), x, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_det, _autograd_log_det(layer, x, cond), rtol=0, atol=1e-8)


@pytest.mark.parametrize("kernel", [3, 1])
def test_conv_coupling_stack_on_maps(kernel):
    torch.manual_seed(0)
    flow = FlowSequence(
        [layer for k in range(2) for layer in all_in_one_block(4, conv_subnet(kernel), seed=k)]
    )
    flow = flow.double()
    _randomise(flow, seed=4)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    y, log_det = flow(x)
    torch.testing.assert_close(flow.inverse(y), x, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_det, _autograd_log_det(flow, x, None), rtol=0, atol=1e-8)


def test_soft_clamp_bounds_the_log_scale():
    coupling = AffineCoupling(4, fc_subnet(), clamp=1.5).double()
    with torch.no_grad():
        for parameter in coupling.parameters():
            parameter.fill_(50.0)  # huge subnet outputs
    _, log_det = coupling(torch.ones(1, 4, dtype=torch.float64))
    assert log_det.item() <= 2 * 1.5 + 1e-9  # |s| <= clamp on each of the 2 transformed channels


def test_actnorm_data_init_standardises_channels():
    layer = ActNorm(3, data_init=True).train()
    x = torch.randn(500, 3) * torch.tensor([5.0, 0.1, 2.0]) + torch.tensor([10.0, -3.0, 0.0])
    y, _ = layer(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(3), atol=1e-3, rtol=0)


def test_gaussian_log_likelihood_matches_torch_distribution():
    z = torch.randn(4, 6, dtype=torch.float64)
    log_det = torch.randn(4, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + log_det
    torch.testing.assert_close(gaussian_log_likelihood(z, log_det), expected)


def test_nan_names_the_layer():
    flow = FlowSequence(all_in_one_block(4, fc_subnet(), seed=0), name="stage 0 flow")
    with torch.no_grad():
        flow.layers[2].offset.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"stage 0 flow: layer 2 \(ActNorm\)"):
        flow(torch.randn(2, 4))


def test_conditional_coupling_needs_its_condition():
    coupling = AffineCoupling(4, fc_subnet(), cond_channels=3)
    with pytest.raises(ValueError, match="condition with 3 channels"):
        coupling(torch.randn(2, 4))
