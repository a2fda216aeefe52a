"""Figures and tables of the chapter "Learned scores and mode interpolation" and its studies
(paper Sec. 4, Fig. 2-4 and 12-15): a trained model's samples over the true density, its score
and x0 prediction beside the true ones, the hallucinations per gap (1D) and per direction (2D),
and the interval comparisons the pages assert. Legends sit below the axes, off the data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import torch

from mi_lib.metrics import Rate
from mi_lib.mixtures import GaussianMixture
from mi_lib.plotting import COLORS, density_over_pdf, scatter_2d
from mi_lib.protocol_plots import density_1d, density_2d, rate_curves
from mi_lib.schedules import Schedule
from mi_lib.tables import show_table

GapRates = Sequence[tuple[float, float, Rate]]


def separated(lower: Rate, higher: Rate) -> bool:
    """True when the two rates' 95% intervals do not overlap, `lower` below `higher`."""
    return lower.high < higher.low


def spread(rates: Iterable[Rate]) -> float:
    """The largest rate over the smallest: how far a set of rates (say, seeds) moves."""
    values = [r.rate for r in rates]
    if not values or min(values) <= 0:
        raise ValueError(f"spread needs positive rates, got {values!r}")
    return max(values) / min(values)


def _legend_below(fig: plt.Figure, ax: plt.Axes, ncol: int = 3) -> None:
    """One legend for the figure, centred under its axes (off the data)."""
    handles, labels = ax.get_legend_handles_labels()
    for a in fig.axes:
        if a.get_legend() is not None:
            a.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9,
               bbox_to_anchor=(0.5, 0.0))
    rows = -(-len(labels) // ncol)
    fig.tight_layout(rect=(0, (0.08 + 0.2 * rows) / fig.get_figheight(), 1, 1))


def loss_figure(recorded: torch.Tensor, live: Sequence[float],
                recorded_label: str) -> plt.Figure:
    """The DDPM loss per training step of the run that made a model, with the first steps of
    the same run repeated live on the page on top."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(range(1, len(recorded) + 1), recorded, color=COLORS["grey"], lw=0.6,
            label=recorded_label)
    ax.plot(range(1, len(live) + 1), live, color=COLORS["model"], lw=1,
            label="live run, this page")
    ax.set(xlabel="training step", ylabel="loss", yscale="log",
           title="DDPM loss on the 3-mode mixture")
    _legend_below(fig, ax, ncol=2)
    return fig


def histograms_figure(sets: dict[str, tuple[torch.Tensor, str]],
                      mixture: GaussianMixture) -> plt.Figure:
    """One density histogram per titled set of 1D samples (sets[title] = (samples, colour)),
    each over the true pdf on a log scale (paper Fig. 2); the sample sizes in the titles."""
    fig, axes = plt.subplots(1, len(sets), figsize=(2.5 * len(sets), 2.8), sharey=True,
                             squeeze=False)
    for ax, (title, (x, color)) in zip(axes[0], sets.items(), strict=True):
        density_over_pdf(ax, x, mixture, color=color, label="samples")
        ax.set_title(f"{title}: {len(x):,}", fontsize=10)
        ax.set_xticks(mixture.means[:, 0].tolist())
    for ax in axes[0, 1:]:
        ax.set_ylabel("")
    _legend_below(fig, axes[0, 0], ncol=2)
    return fig


def density_figure(samples: torch.Tensor, mixture: GaussianMixture,
                   title: str) -> plt.Figure:
    """One density histogram of 1D samples over the true pdf, the legend below."""
    fig, ax = plt.subplots(figsize=(7, 2.9))
    density_over_pdf(ax, samples, mixture, label=f"{len(samples):,} samples")
    ax.set_ylim(1e-4, 30)
    ax.set_title(title)
    _legend_below(fig, ax, ncol=2)
    return fig


def bank_density_figure(bank: dict, mixture: GaussianMixture, title: str) -> plt.Figure:
    """A 1D protocol bank's density over the true pdf (mi_lib.protocol_plots.density_1d:
    every draw, log scale, paper Fig. 2), the legend below."""
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    density_1d(ax, bank, mixture, label="model")
    ax.set_ylim(ax.get_ylim()[0], 30)  # no headroom needed: the legend is below
    ax.set_title(title)
    _legend_below(fig, ax, ncol=3)
    return fig


def bank_density_pair(banks: dict[str, dict],
                      mixtures: dict[str, GaussianMixture]) -> plt.Figure:
    """Side by side, each titled 2D protocol bank as counts per bin on a log colour scale
    (mi_lib.protocol_plots.density_2d), the modes as circles (paper Fig. 3)."""
    fig, axes = plt.subplots(1, len(banks), figsize=(4 * len(banks), 3.6), squeeze=False)
    for ax, (name, bank) in zip(axes[0], banks.items(), strict=True):
        density_2d(ax, bank, mixtures[name],
                   title=f"{name}: {bank['metrics']['n']:,} draws")
    fig.tight_layout()
    return fig


def rates_figure(rates: dict[str, dict[float, Rate]], xlabel: str,
                 title: str) -> plt.Figure:
    """Each labelled series' rate against a setting with its 95% interval, log-log
    (mi_lib.protocol_plots.rate_curves), the legend below."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rate_curves(ax, rates, xlabel, title)
    _legend_below(fig, ax, ncol=2)
    return fig


def score_figure(x: torch.Tensor, curves: dict[int, dict[str, torch.Tensor]],
                 mixture: GaussianMixture, schedule: Schedule) -> plt.Figure:
    """Top row: the true and the learned score at each step t of `curves`; bottom row: the
    true and the learned x0 prediction (paper Fig. 4). curves[t] maps 'true score', 'learned
    score', 'true x0_hat' and 'learned x0_hat' to values over the grid x (N, 1)."""
    fig, axes = plt.subplots(2, len(curves), figsize=(2.1 * len(curves), 4.4), sharex=True,
                             squeeze=False)
    xs = x[:, 0]
    for j, (t, c) in enumerate(curves.items()):
        for i, what in enumerate(("score", "x0_hat")):
            ax = axes[i, j]
            ax.plot(xs, c[f"true {what}"], color="black", lw=1, label="true")
            ax.plot(xs, c[f"learned {what}"], color=COLORS["model"], lw=1.5,
                    label="learned")
            for mu in mixture.means[:, 0]:
                ax.axvline(float(mu), color=COLORS["grey"], lw=0.5, ls=":")
            if what == "score":
                lim = 1.2 * float(c["learned score"].abs().max())
                ax.set_ylim(-lim, lim)
                ax.set_title(rf"$t = {t}$, $\bar\alpha = {schedule.at(t):.3f}$", fontsize=10)
            else:
                ax.set_xlabel("x")
        axes[0, j].set_ylabel("score" if j == 0 else "")
        axes[1, j].set_ylabel("x0_hat" if j == 0 else "")
    _legend_below(fig, axes[0, 0], ncol=2)
    return fig


def max_gap_slope(x: torch.Tensor, x0_hat: torch.Tensor, mixture: GaussianMixture,
                  margin: float = 0.1) -> float:
    """The largest slope d x0_hat / dx over the grid points x (N, 1) inside the gaps between
    neighbouring modes, `margin` away from each mode: huge for a staircase, of order one for
    a ramp (paper Fig. 4)."""
    xs = x[:, 0].double()
    slope = torch.diff(x0_hat.double()) / torch.diff(xs)
    mid = xs[:-1]
    mu = mixture.means[:, 0].sort().values.tolist()
    inside = torch.zeros_like(mid, dtype=torch.bool)
    for lo, hi in zip(mu[:-1], mu[1:], strict=True):
        inside |= (mid > lo + margin) & (mid < hi - margin)
    if not bool(inside.any()):
        raise ValueError("the grid x has no point inside a gap between modes")
    return float(slope[inside].max())


def gap_table(models: dict[str, GapRates], digits: int = 4) -> None:
    """One row per gap of each labelled model (models[label] = [(lo, hi, Rate), ...] as
    mi_lib.metrics.gap_rates or mi_lib.banks.bank_gap_rates give them): its width, the share
    of all draws that are hallucinations in it (count of n), its 95% interval, and that share
    per unit width."""
    pct = f".{digits}%"
    show_table(
        ["model", "gap", "width", "share of all draws", "95% CI", "per unit width"],
        [[label, f"{lo:g}-{hi:g}", f"{hi - lo:g}", f"{r.rate:{pct}} ({r.count:,} of {r.n:,})",
          f"{r.low:{pct}} to {r.high:{pct}}", f"{r.rate / (hi - lo):{pct}}"]
         for label, gaps in models.items() for lo, hi, r in gaps],
    )


def direction_table(directions: dict[str, dict[str, Rate]],
                    totals: dict[str, Rate], digits: int = 3) -> None:
    """One row per 2D mixture: all its hallucinations and those that left their nearest mode
    along an axis and along a diagonal (mi_lib.metrics.direction_rates), counts of n."""
    def cell(r: Rate) -> str:
        return f"{r.rate:.{digits}%} ({r.count:,} of {r.n:,})"

    show_table(
        ["mixture", "hallucinated", "along an axis", "along a diagonal"],
        [[name, cell(totals[name]), cell(d["axis"]), cell(d["diagonal"])]
         for name, d in directions.items()],
    )


def scatter_pair(samples: dict[str, torch.Tensor],
                 mixtures: dict[str, GaussianMixture]) -> plt.Figure:
    """Side by side, each titled set of 2D samples with its hallucinations in red and its
    modes as circles (paper Fig. 3); one legend below the panels."""
    fig, axes = plt.subplots(1, len(samples), figsize=(4 * len(samples), 4.6),
                             squeeze=False)
    for ax, (name, x) in zip(axes[0], samples.items(), strict=True):
        m = mixtures[name]
        scatter_2d(ax, x, m, m.hallucinated(x), s=2.0, title=f"{name}: {len(x):,}")
    _legend_below(fig, axes[0, 0], ncol=2)
    for h in fig.legends[0].legend_handles:
        h.set_sizes([20.0])
    return fig
