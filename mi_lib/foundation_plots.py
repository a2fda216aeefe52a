"""The figures of the first two chapters, diffusion and mixture scores: the noise schedule,
a mixture on its way to noise, the lowest loss per step, samples travelling to their modes,
and the closed-form score and x0 denoiser (paper, Sec. 3 and 4.3, Fig. 4).

Each figure is sized for the page's text column (about 7 to 8 inches wide) so that its
labels keep the style's font size when the page shows it, and keeps its legend off the data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from mi_lib.mixtures import GaussianMixture
from mi_lib.plotting import COLORS, score_and_denoiser_1d, score_field_2d
from mi_lib.schedules import Schedule

ALPHA_BAR = r"$\bar\alpha_t$"


def _ab_text(alpha_bar: float) -> str:
    """alpha_bar with three significant digits: 0.939, 0.0141, 7.56e-05."""
    return f"{alpha_bar:.3g}"


def schedule_curve(schedule: Schedule, marks: list[int], floor: float = 1e-4) -> plt.Figure:
    """alpha_bar_t on a log scale (paper, Sec. 3: the share of the signal's variance left at
    step t), with the steps `marks` as points whose values a legend lists, and a dashed line
    where alpha_bar first falls below `floor`. The y axis stops two decades below `floor`."""
    ab = schedule.alpha_bar.numpy()
    t_floor = int(np.nonzero(ab < floor)[0][0])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.semilogy(ab, color=COLORS["data"], lw=1.5)
    for i, t in enumerate(marks):
        ax.plot(t, ab[t], "osD^v"[i % 5], color="black", ms=6, ls="none",
                label=f"t = {t}: {ALPHA_BAR} = {_ab_text(float(ab[t]))}")
    ax.axvline(t_floor, color=COLORS["grey"], ls="--",
               label=f"{ALPHA_BAR} < {floor:g} from t = {t_floor}")
    ax.set_ylim(floor / 100, 3)
    ax.set_xlim(0, len(ab))
    ax.set(xlabel="step t", ylabel=f"{ALPHA_BAR} (log scale)",
           title="How much signal survives to step t")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def noised_histograms(noised: dict[int, torch.Tensor], mixture: GaussianMixture,
                      schedule: Schedule, xlim: tuple[float, float] = (-3.5, 4.0),
                      ncols: int = 3) -> plt.Figure:
    """Histograms of 1D samples x_t (one panel per step t of `noised`, `ncols` to a row) over
    the density of the mixture noised to that step, which is a mixture again (paper, Sec. 4.3)."""
    ts = list(noised)
    nrows = -(-len(ts) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5, 2.1 * nrows), squeeze=False,
                             sharex=True)
    grid = torch.linspace(*xlim, 800, dtype=torch.float64)[:, None]
    for ax, t in zip(axes.flat, ts, strict=False):  # a last row may have spare panels
        ab = schedule.at(t)
        ax.hist(noised[t].reshape(-1).numpy(), bins=120, range=xlim, density=True,
                color=COLORS["data"], alpha=0.6)
        ax.plot(grid[:, 0], mixture.log_prob(grid, ab).exp(), color="black", lw=1)
        ax.set_title(f"t = {t}, {ALPHA_BAR} = {_ab_text(ab)}", fontsize=10)
        ax.set_yticks([])
        ax.set_xlim(*xlim)
    for ax in axes.flat[len(ts):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("x_t")
    fig.tight_layout()
    return fig


def loss_floor_curve(ts: list[int], floor: list[float]) -> plt.Figure:
    """The mean squared error of the ideal noise prediction at each step t (the lowest loss a
    network can reach there), over t on a scale that is linear below 1 and logarithmic above."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(ts, floor, "o-", color=COLORS["exact"])
    ax.set_xscale("symlog", linthresh=1)
    ticks = [t for t in (0, 1, 10, 100, 1000) if t <= max(ts)] + [max(ts)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, None)
    ax.set(xlabel="step t", ylabel="MSE of the ideal\nnoise prediction",
           title="The lowest loss any network can reach, per step")
    fig.tight_layout()
    return fig


def sample_paths(paths: torch.Tensor, modes: torch.Tensor, t_mark: float,
                 mark_label: str, t_max: int = 300) -> plt.Figure:
    """Paths x_t of a few samples over the last `t_max` reverse steps (`paths` (T, n), from
    t = T-1 down to 0), each coloured by the mode it ends at (`modes` (n,)), with a dashed
    line at step `t_mark`. The legend sits under the axes, off the paths."""
    T, n = paths.shape
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    t = np.arange(T - 1, -1, -1)
    for i in range(n):
        ax.plot(t, paths[:, i].numpy(), lw=0.7, alpha=0.8,
                color=colors[int(modes[i]) % len(colors)])
    handles = [plt.Line2D([], [], color=colors[k % len(colors)], lw=1.5)
               for k in sorted(set(modes.tolist()))]
    labels = [f"ends at mode {k + 1}" for k in sorted(set(modes.tolist()))]
    line = ax.axvline(t_mark, color="black", ls="--", lw=1)
    ax.set(xlim=(t_max, 0), xlabel="step t (reverse time: sampling runs to the right)",
           ylabel="x_t", title=f"{n} samples travelling with the exact score")
    ax.legend(handles + [line], labels + [mark_label], loc="upper center",
              bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=10)
    fig.tight_layout()
    return fig


def denoiser_curves(mixture: GaussianMixture, schedule: Schedule, ts: list[int],
                    xlim: tuple[float, float] = (0.0, 4.0),
                    score_lim: float = 25.0) -> plt.Figure:
    """The closed-form score (left) and x0 denoiser (right) of a 1D mixture at the steps
    `ts`, one colour per step (paper, Fig. 4), with one legend under both panels."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ts)))
    for t, c in zip(ts, colors, strict=True):
        score_and_denoiser_1d(axes, mixture, schedule.at(t), xlim=xlim,
                              label=f"t = {t}", color=c)
    axes[0].set_ylim(-score_lim, score_lim)
    axes[0].set_ylabel("score")
    axes[1].set_ylabel("x0 denoiser")
    axes[0].set_title(r"$\nabla \log p_t(x)$")
    axes[1].set_title(r"$E[x_0 \mid x_t = x]$")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(ts), 7), fontsize=10,
               handlelength=1.5, columnspacing=1.2)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def score_fields(mixture: GaussianMixture, schedule: Schedule, ts: list[int],
                 n: int = 21) -> plt.Figure:
    """The closed-form score of a 2D mixture as arrows of unit length at the steps `ts`, one
    panel per step, over the noised modes (crosses)."""
    fig, axes = plt.subplots(1, len(ts), figsize=(2.7 * len(ts), 3), squeeze=False)
    for ax, t in zip(axes[0], ts, strict=True):
        score_field_2d(ax, mixture, schedule.at(t), n=n)
        ax.set_title(f"t = {t}, {ALPHA_BAR} = {_ab_text(schedule.at(t))}", fontsize=10)
    fig.tight_layout()
    return fig
