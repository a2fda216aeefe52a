"""Figures and tables of the paper-protocol banks (mi_lib.artifacts.protocol, read through
mi_lib.banks): densities of a million draws, how far draws stray from their mode, rates
against a setting, and the detection table beside the paper's (Sec. 4-5)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm

from mi_lib.banks import bank_rate, survival
from mi_lib.metrics import Rate
from mi_lib.mixtures import GaussianMixture
from mi_lib.plotting import COLORS
from mi_lib.tables import show_table


def density_1d(ax: plt.Axes, bank: dict, mixture: GaussianMixture, merge: int = 10, label: str = "model") -> None:
    """The bank's histogram (every draw; `merge` fine bins to a bar) as a density on a log scale
    over the true pdf (paper Fig. 2): one draw in a bar shows as the lowest step."""
    lo, hi = bank["edges"].tolist()
    counts = bank["histogram"].double()
    counts = counts[: len(counts) // merge * merge].reshape(-1, merge).sum(dim=1)
    width = (hi - lo) / len(bank["histogram"]) * merge
    left = lo + width * np.arange(len(counts))
    dens = (counts / (bank["metrics"]["n"] * width)).numpy()
    ax.stairs(dens, np.append(left, left[-1] + width), fill=True, color=COLORS["model"], alpha=0.6,
              label=f"{label}: {bank['metrics']['n']:,} draws")
    grid = torch.linspace(lo, hi, 4000, dtype=torch.float64)[:, None]
    pdf = mixture.log_prob(grid).exp()
    ax.plot(grid[:, 0], pdf, color="black", lw=0.8, label="true pdf")
    floor = 1 / (bank["metrics"]["n"] * width)
    top = 100 * max(float(pdf.max()), float(dens.max()))  # headroom for the legend above the peaks
    xlim = (float(mixture.means.min()) - 0.5, float(mixture.means.max()) + 0.5)
    ax.set(yscale="log", ylim=(floor / 3, top), xlim=xlim, xlabel="x", ylabel="density")
    ax.axhline(floor, color=COLORS["grey"], lw=0.6, ls=":", label="one draw per bar")
    ax.legend(loc="upper right", fontsize=8)


def density_2d(ax: plt.Axes, bank: dict, mixture: GaussianMixture, title: str = "") -> None:
    """The bank's 2D histogram (every draw) as counts per bin on a log colour scale, the modes
    as circles."""
    lo, hi = bank["edges"].tolist()
    counts = bank["histogram"].double().numpy().T  # histogram2d puts x on the first axis
    shown = np.where(counts > 0, counts, np.nan)
    im = ax.imshow(shown, origin="lower", extent=(lo, hi, lo, hi), norm=LogNorm(vmin=1, vmax=np.nanmax(shown)),
                   cmap="viridis", interpolation="nearest")
    ax.scatter(mixture.means[:, 0], mixture.means[:, 1], s=40, facecolors="none", edgecolors="white", lw=0.5)
    ax.set(aspect="equal", title=title or f"{bank['metrics']['n']:,} draws (log colour)")
    plt.colorbar(im, ax=ax, fraction=0.046, label="draws per bin")


def gaussian_survival(r: np.ndarray, dim: int) -> np.ndarray:
    """``P(|z| > r)`` for a standard normal vector z in `dim` dimensions (1 or 2): what a model that
    drew each mode exactly would put beyond r sigma."""
    if dim == 1:
        return np.array([math.erfc(v / math.sqrt(2)) for v in r])
    if dim == 2:
        return np.exp(-np.asarray(r) ** 2 / 2)
    raise ValueError(f"dim must be 1 or 2, got {dim!r}")


def survival_figure(banks: dict[str, tuple[dict, GaussianMixture]], r_max: float = 60.0) -> plt.Figure:
    """For each labelled bank, the share of draws farther than r sigma from their nearest mode
    against r (log-log), beside an exact Gaussian's, with the 6-sigma label and half the
    distance to the nearest neighbouring mode (the middle of a gap)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    r = np.geomspace(3.0, r_max, 120)
    for i, (label, (bank, mixture)) in enumerate(banks.items()):
        s = survival(bank, mixture, torch.from_numpy(r)).numpy()
        color = plt.rcParams["axes.prop_cycle"].by_key()["color"][i]
        ax.plot(r, np.where(s > 0, s, np.nan), color=color, label=label)
        d = torch.cdist(mixture.means, mixture.means)
        half_gap = float(d[d > 0].min()) / 2 / float(mixture.sigmas.min())
        ax.axvline(half_gap, color=color, ls=":", lw=0.8)
    for dim in sorted({m.dim for _, m in banks.values()}):
        ax.plot(r, gaussian_survival(r, dim), color=COLORS["grey"], ls="--", lw=0.8,
                label=f"exact modes ({dim}D Gaussian)")
    ax.axvline(6, color="black", lw=0.8, label="6 sigma: the label")
    ax.set(xscale="log", yscale="log", ylim=(1e-7, 1), xlim=(3, r_max),
           xlabel="distance to the nearest mode r (sigmas)", ylabel="share of draws beyond r",
           title="how far draws stray (dotted: the middle of a gap)")
    ticks = [t for t in (3, 6, 10, 20, 40, 60) if t <= r_max]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8, loc="lower left")
    return fig


def rate_curves(ax: plt.Axes, rates: dict[str, dict[float, Rate]], xlabel: str, title: str = "") -> None:
    """One line per labelled series: each setting's rate (rates[label][x]) with its 95% interval,
    on log-log axes."""
    for i, (label, by_x) in enumerate(rates.items()):
        xs = sorted(by_x)
        r = [by_x[x] for x in xs]
        ax.errorbar(xs, [v.rate for v in r], yerr=[[v.rate - v.low for v in r], [v.high - v.rate for v in r]],
                    marker="os^D"[i % 4], capsize=3, label=label)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="hallucination rate", title=title)
    ticks = sorted({x for by_x in rates.values() for x in by_x})
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=8)


def series_table(series: dict[str, dict[float, dict]], mixture: GaussianMixture, setting: str = "setting",
                 window: str = "0-14") -> dict[str, dict[float, Rate]]:
    """Shows one row per bank of each labelled series (series[label][x] is a protocol bank, x
    its value of the setting named `setting`): its training steps and epochs, its rate beyond
    6 sigma, and Hal's AUROC and kept share over `window`. Returns the rates, rates[label][x]."""
    for label, banks in series.items():
        for x, bank in banks.items():
            if window not in bank["metrics"]["windows"]:
                raise ValueError(f"window must be one the bank {label!r} {x:g} recorded, "
                                 f"{sorted(bank['metrics']['windows'])}; got {window!r}")
    rates, rows = {}, []
    for label, banks in series.items():
        rates[label] = {x: bank_rate(bank, mixture) for x, bank in banks.items()}
        for x, bank in banks.items():
            toy, w = bank["recipe"].toy, bank["metrics"]["windows"][window]
            rows.append([label, f"{x:g}", f"{toy.steps:,}", f"{toy.epochs:,.0f}", rates[label][x].format(4),
                         f"{w['auroc']:.3f}", f"{w['kept']:.1%}"])
    show_table(["series", setting, "steps", "epochs", "beyond 6 sigma", "Hal AUROC", "kept, 95% removed"], rows)
    return rates
