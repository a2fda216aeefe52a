"""v-prediction (mi_lib.prediction): the target, the eps it implies, and training on it."""

import pytest
import torch
from torch import nn

from mi_lib.diffusion import q_sample, x0_hat_from_eps
from mi_lib.prediction import VPrediction, training_target, v_target
from mi_lib.schedules import cosine_schedule, respace
from mi_lib.training import train
from mi_lib.unet import UNet


class Oracle(nn.Module):
    """Returns a fixed tensor whatever it is asked: the exact v of one batch."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.out


@pytest.mark.parametrize("t", [0, 10, 500, 900, 998, 999])
def test_exact_v_gives_back_eps_and_x0(t):
    s = cosine_schedule(1000)
    g = torch.Generator().manual_seed(t)
    x0 = torch.rand(64, 1, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(64, 1, 8, 8, generator=g)
    tt = torch.full((64,), t)
    xt = q_sample(x0, tt, s, eps)
    eps_hat = VPrediction(Oracle(v_target(x0, tt, s, eps)), s)(xt, torch.tensor(t))
    assert eps_hat == pytest.approx(eps, abs=1e-5)
    # Through the samplers' own x0_hat (a division by sqrt(alpha_bar)): within 5e-3 even at t = T - 1.
    assert (x0_hat_from_eps(xt, tt, eps_hat, s) - x0).abs().max() < 5e-3


def test_v_is_minus_x0_at_pure_noise_and_eps_at_no_noise():
    s = cosine_schedule(1000)
    x0, eps = torch.ones(3, 4), torch.full((3, 4), 2.0)
    assert v_target(x0, torch.full((3,), 999), s, eps) == pytest.approx(-x0, abs=1e-4)
    assert v_target(x0, torch.zeros(3, dtype=torch.long), s, eps) == pytest.approx(eps, abs=0.05)


def test_training_target_rejects_an_unknown_prediction():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="prediction must be one of"):
        training_target("x0", x, torch.zeros(2, dtype=torch.long), cosine_schedule(10), x)


def test_train_with_v_learns_v_and_samples_through_respacing():
    s = cosine_schedule(100)
    x0 = torch.rand(16, 1, 16, 16) * 2 - 1
    torch.manual_seed(0)
    net = UNet(1, base=8, mults=(1, 2), n_res=1, patch=4)
    losses = [st.loss for st in train(net, x0, s, steps=3, batch_size=8, prediction="v", progress=False)]
    assert len(losses) == 3 and all(v > 0 for v in losses)
    with pytest.raises(ValueError, match="prediction"):
        next(train(net, x0, s, steps=1, batch_size=8, prediction="x0", progress=False))
    # The wrapper reads alpha_bar at the *original* time a respaced sampler passes.
    short = respace(s, 10)
    model = VPrediction(net, s).eval()
    x = torch.randn(2, 1, 16, 16)
    t = short.timesteps[5]
    with torch.no_grad():
        expected = s.sqrt_one_minus_alpha_bar[t].float() * x + s.sqrt_alpha_bar[t].float() * net(x, t)
        assert model(x, t) == pytest.approx(expected, abs=1e-6)
        assert model.features(x, t).shape == net.features(x, t).shape
