"""What a network predicts: eps (Ho et al. 2020), or v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0
(Salimans & Ho 2022), and the wrapper that turns a v network into the eps network every
sampler in mi_lib expects.

Why v for images: near t = T, alpha_bar is tiny (about 2e-9 at the last step of the cosine
schedule), x_t is almost pure noise, and x0_hat = (x_t - sqrt(1 - alpha_bar) eps_theta) /
sqrt(alpha_bar) multiplies any error of eps_theta by 1 / sqrt(alpha_bar). A v network instead
predicts about -x0 there, and x0_hat = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v_theta
divides by nothing. The sampler is unchanged: it receives eps = sqrt(1 - alpha_bar) x_t +
sqrt(alpha_bar) v_theta, the same mathematics written without a division. (The samplers'
own x0_hat_from_eps then divides by sqrt(alpha_bar); in float32 that loses at most ~4e-3 at
the cosine schedule's last step, half an 8-bit grey level, and 6e-4 one step later.)
"""

from __future__ import annotations

import torch
from torch import nn

from mi_lib.checks import check_choice
from mi_lib.diffusion import coef_at
from mi_lib.schedules import Schedule

PREDICTIONS = ("eps", "v")


def v_target(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 for x_t drawn with this eps."""
    return coef_at(schedule.sqrt_alpha_bar, t, x0) * eps - coef_at(schedule.sqrt_one_minus_alpha_bar, t, x0) * x0


def training_target(prediction: str, x0: torch.Tensor, t: torch.Tensor, schedule: Schedule,
                    eps: torch.Tensor) -> torch.Tensor:
    """What a network with this `prediction` ('eps' or 'v') is trained to output."""
    check_choice("prediction", prediction, PREDICTIONS)
    return eps if prediction == "eps" else v_target(x0, t, schedule, eps)


class VPrediction(nn.Module):
    """An eps network made of a v network `net`: forward(x_t, t) returns
    sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v_theta(x_t, t). t is the time the network
    is called with (an index of the *training* schedule, also under respacing), so alpha_bar
    comes from `schedule`, the schedule `net` was trained with. features() passes through."""

    def __init__(self, net: nn.Module, schedule: Schedule) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("sqrt_ab", schedule.sqrt_alpha_bar.float(), persistent=False)
        self.register_buffer("sqrt_1m_ab", schedule.sqrt_one_minus_alpha_bar.float(), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).long().expand(len(x))
        shape = (-1,) + (1,) * (x.ndim - 1)
        return self.sqrt_1m_ab[t].view(shape) * x + self.sqrt_ab[t].view(shape) * self.net(x, t)

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net.features(x, t)
