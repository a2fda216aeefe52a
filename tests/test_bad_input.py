"""Bad input fails at the public entry with a ValueError that names the parameter, the value
given and what is allowed, before any long work."""

import math

import pytest
import torch

from mi_lib import (
    ToyMLP,
    cosine_schedule,
    gaussian_mixture,
    hal_after_the_fact,
    linear_schedule,
    model_eps_fn,
    q_sample,
    sample_bank,
    sample_with_hal,
    train,
)

S = linear_schedule(10)


def _never(x, t):
    raise AssertionError("the network was called although the input is bad")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gaussian_mixture([1.0, math.nan, 3.0], 0.05),
         r"means must be finite, got 1 non-finite entries, e.g. nan"),
        (lambda: gaussian_mixture([1.0, 2.0], math.inf), r"sigma must be finite, got 1 non-finite entries, e.g. inf"),
        (lambda: gaussian_mixture([1.0, 2.0], 0.1, weights=[math.nan, 0.5]), r"weights must be finite"),
        (lambda: cosine_schedule(10, s=math.nan), r"s must be a non-negative finite offset, got nan"),
        (lambda: q_sample(torch.zeros(4, 1), 3, S, torch.zeros(4, 2)),
         r"eps must have the shape of x0 \(4, 1\), got \(4, 2\)"),
        (lambda: next(train(ToyMLP(dim=1, width=8), torch.zeros(20, 1), S, steps=2, batch_size=4, lr=math.inf)),
         r"lr must be positive and finite, got inf"),
        (lambda: hal_after_the_fact(_never, torch.full((3, 1), math.nan), S, 0, 4, 2, seed=0),
         r"x0 must be finite, got 3 non-finite entries"),
        (lambda: sample_bank(_never, 4, 1, S, seed=-1, progress=False), r"seed must be a non-negative integer, got -1"),
        (lambda: sample_with_hal(_never, 4, 1, S, 0, (0, 3), chunk=0, progress=False),
         r"chunk must be a positive integer, got 0"),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sampling_a_1d_model_in_2d_fails_at_once_with_the_shapes():
    calls = []
    eps_fn = model_eps_fn(ToyMLP(dim=1, width=8))

    def counted(x, t):
        calls.append(1)
        return eps_fn(x, t)

    with pytest.raises(ValueError, match=r"x must have shape \(N, 1\) for a model of dim 1, got \(4, 2\)"):
        sample_bank(counted, 4, 2, S, seed=0, progress=False)
    assert len(calls) == 1  # the first step, not after T of them
