"""Figures and tables of the model-collapse chapter (paper Sec. 6, Fig. 8, 9 and 16): each
generation's samples, the hallucinated share and mode coverage per filter (over seeds, for the
long runs, and which modes the Hal filter keeps), the Frechet distance of the digits per
generation, and whether Hal still marks the less clear digits."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import spearmanr

from mi_lib.collapse_metrics import corner_modes, mode_coverage, mode_median_hal, mode_share
from mi_lib.digits import digit_confidence
from mi_lib.mixtures import GaussianMixture
from mi_lib.plotting import COLORS, scatter_2d
from mi_lib.tables import show_table

FILTERS = ("none", "random", "hal")
LABEL = {"none": "no filter", "random": "random filter", "hal": "Hal filter"}
COLOR = {"none": COLORS["grey"], "random": COLORS["model"], "hal": COLORS["data"]}


def series(run: dict, f: str, key: str) -> np.ndarray:
    """One metric `key` of filter f's run, generation by generation."""
    return np.array([g[key] for g in run["metrics"][f]])


def show_budgets(runs: Sequence[tuple[str, object]]) -> None:
    """A table of the recipes (name, CollapseRecipe): generations, samples kept and drawn,
    network width, training steps, batch, epochs per generation and sampler."""
    show_table(
        ["run", "generations", "kept", "drawn (ratio)", "width", "steps", "batch", "epochs / gen.", "sampler"],
        [[name, rec.generations, f"{rec.n_keep:,}", f"{rec.n_draw:,} ({rec.n_draw / rec.n_keep:.3f})",
          f"{rec.width}", f"{rec.steps:,} + {rec.anneal_steps:,}", f"{rec.batch_size:,}", f"{rec.epochs:,.0f}",
          f"T = {rec.T}, Hal over t = {rec.window[1]}..{rec.window[0]}"] for name, rec in runs],
    )


def scatter_row(axes: Sequence[plt.Axes], run: dict, f: str, mixture: GaussianMixture, title: bool = True,
                generations: Sequence[int] | None = None) -> None:
    """One scatter plot per generation (all, or those in `generations`) of filter f's stored
    samples, hallucinated ones in red."""
    gens = range(len(axes)) if generations is None else generations
    if len(gens) != len(axes):
        raise ValueError(f"generations must name one generation per axis ({len(axes)}), got {list(gens)}")
    edge = float(mixture.means.abs().max() + 6 * mixture.sigmas.max())
    lim = (-edge, edge)  # every mode, with its 6 sigma
    for g, ax in zip(gens, axes, strict=True):
        x = run["samples"][f][g]
        h = mixture.hallucinated(x)
        scatter_2d(ax, x, mixture, h, s=1.5)
        ax.set(xlim=lim, ylim=lim, xticks=[], yticks=[])
        if title:
            ax.set_title(f"generation {g}: {float(h.double().mean()):.1%} hal.", fontsize=9)


def filter_curves(run: dict) -> plt.Figure:
    """Per filter and generation: the hallucinated share of the drawn (solid) and kept (dashed)
    samples, and the evenness of the mode shares."""
    gens = np.arange(run["recipe"].generations)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for f in FILTERS:
        ax.plot(gens, 100 * series(run, f, "drawn_hallucinated"), "o-", color=COLOR[f], label=f"{LABEL[f]}: drawn")
        ax.plot(gens, 100 * series(run, f, "kept_hallucinated"), "x--", color=COLOR[f], alpha=0.7,
                label=f"{LABEL[f]}: kept")
        ax2.plot(gens, series(run, f, "drawn_mode_evenness"), "o-", color=COLOR[f], label=LABEL[f])
    ax.set(xlabel="generation", ylabel="hallucinated (%)", xticks=gens, title="2D grid: hallucinated share")
    ax2.set(xlabel="generation", ylabel="evenness of the mode shares", xticks=gens, title="2D grid: mode coverage")
    ax.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig


def digit_tiles(run: dict, filters: Sequence[str] = ("none", "hal"), n_show: int = 16) -> plt.Figure:
    """The first n_show (a square number) 8 x 8 digits of each generation, one row per filter."""
    side = int(round(n_show**0.5))
    gens = run["recipe"].generations
    fig, axes = plt.subplots(len(filters), gens, figsize=(2.6 * gens, 2.8 * len(filters)), squeeze=False)
    for row, f in zip(axes, filters, strict=True):
        for g, ax in enumerate(row):
            imgs = run["samples"][f][g][:n_show].reshape(n_show, 8, 8)
            tiles = imgs.reshape(side, side, 8, 8).permute(0, 2, 1, 3).reshape(8 * side, 8 * side)
            ax.imshow(tiles.numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"generation {g}", fontsize=9)
        row[0].set_ylabel(LABEL[f])
    fig.tight_layout()
    return fig


def fid_curves(fid: dict[str, np.ndarray], floor: float) -> plt.Figure:
    """The Frechet distance to the real digits per generation and filter, over the distance
    between two halves of the real digits (dotted)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    gens = np.arange(len(next(iter(fid.values()))))
    for f, values in fid.items():
        ax.plot(gens, values, "o-", color=COLOR[f], label=LABEL[f])
    ax.axhline(floor, color="black", ls=":", lw=1, label="two halves of the real digits")
    ax.set(xlabel="generation", ylabel="Frechet distance to the real digits", xticks=gens,
           title="digits: distance per generation", ylim=(0, None))
    ax.legend(fontsize=8)
    return fig


def per_filter(values: dict[str, Sequence[object]], g: int, fmt: str = "{}") -> str:
    """Generation g's value of each filter, 'none / random / Hal'."""
    return " / ".join(fmt.format(values[f][g]) for f in FILTERS)


def fid_seed_curves(fid: dict[int, dict[str, np.ndarray]], floor: float) -> plt.Figure:
    """fid[seed][filter]: the Frechet distance to the real digits per generation, one line per
    seed and filter (a marker per seed), over the distance between two halves of the real
    digits (dotted)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    markers = "os^Dv"
    for i, (seed, by_filter) in enumerate(fid.items()):
        for f, values in by_filter.items():
            gens = np.arange(len(values))
            ax.plot(gens, values, "-", marker=markers[i % len(markers)], color=COLOR[f], alpha=0.8, ms=4,
                    label=f"{LABEL[f]}, seed {seed}")
    ax.axhline(floor, color="black", ls=":", lw=1, label="two halves of the real digits")
    ax.set(xlabel="generation", ylabel="Frechet distance to the real digits", xticks=gens,
           title="digits, Hal after the fact: distance per generation and seed", ylim=(0, None))
    ax.legend(fontsize=7, ncol=2)
    return fig


def hal_confidence_rho(run: dict) -> np.ndarray:
    """Per generation of a digits run: the Spearman correlation between each stored digit's Hal
    and its classifier confidence (digit_confidence with the run's classifier), over the stored
    digits of every filter (generation 0's once: its model is shared). Negative when a higher
    Hal marks a digit that reads less clearly, 0 when Hal says nothing of it."""
    filters = list(run["samples"])
    rho = []
    for g in range(len(run["samples"][filters[0]])):
        fs = filters[:1] if g == 0 else filters
        x = torch.cat([run["samples"][f][g] for f in fs])
        hal = torch.cat([run["hal"][f][g] for f in fs])
        rho.append(spearmanr(hal.numpy(), digit_confidence(run["classifier"], x).numpy())[0])
    return np.array(rho)


def rho_curves(rho: dict[int, np.ndarray]) -> plt.Figure:
    """rho[seed]: hal_confidence_rho per generation, one line per seed, around 0 (dotted)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for seed, values in rho.items():
        ax.plot(np.arange(len(values)), values, "o-", label=f"seed {seed}")
    ax.axhline(0, color="black", ls=":", lw=1)
    ax.set(xlabel="generation", ylabel="Spearman rho, Hal vs confidence", xticks=np.arange(len(values)),
           title="does a higher Hal mark a less clear digit?")
    ax.legend(fontsize=8)
    return fig


def corner_series(run: dict, f: str, mixture: GaussianMixture) -> np.ndarray:
    """Per generation: the share of filter f's stored in-support samples at the grid's corners."""
    corners = corner_modes(mixture)
    return np.array([mode_share(x, mixture, corners) for x in run["samples"][f]])


def long_run_curves(runs: dict[int, dict], mixture: GaussianMixture) -> plt.Figure:
    """runs[seed]: a long 2D run. Per filter (colour) and seed (marker), generation by generation:
    the hallucinated share of the draw, the modes covered, and the share of the in-support
    samples at the four corners (the data: 4 / 25, dotted)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    markers = "os^Dv"
    for i, (seed, run) in enumerate(runs.items()):
        gens = np.arange(run["recipe"].generations)
        for f in FILTERS:
            style = dict(marker=markers[i % len(markers)], color=COLOR[f], ms=3.5, alpha=0.85,
                         ls="-" if i == 0 else "--", label=f"{LABEL[f]}, seed {seed}")
            axes[0].plot(gens, 100 * series(run, f, "drawn_hallucinated"), **style)
            axes[1].plot(gens, series(run, f, "drawn_modes_covered"), **style)
            axes[2].plot(gens, corner_series(run, f, mixture), **style)
    axes[2].axhline(len(corner_modes(mixture)) / mixture.n_modes, color="black", ls=":", lw=1, label="the data")
    axes[0].set(ylabel="hallucinated (%)", title="hallucinated share of the draw", ylim=(0, 100))
    axes[1].set(ylabel=f"modes covered (of {mixture.n_modes})", title="modes covered", ylim=(0, mixture.n_modes + 1))
    axes[2].set(ylabel="share at the 4 corners", title="in-support samples at the corners", ylim=(0, 1.02))
    for ax in axes:
        ax.set_xlabel("generation")
    axes[2].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _on_grid(values: torch.Tensor, mixture: GaussianMixture) -> np.ndarray:
    """Per-mode values of a 2D grid mixture laid out as the grid (rows: y from top to bottom)."""
    xs, ys = (torch.unique(mixture.means[:, j]) for j in (0, 1))
    img = np.full((len(ys), len(xs)), np.nan)
    for m, (x, y) in enumerate(mixture.means):
        img[len(ys) - 1 - int((ys == y).nonzero()), int((xs == x).nonzero())] = float(values[m])
    return img


def mode_maps(runs: dict[int, dict], mixture: GaussianMixture, f: str = "hal") -> plt.Figure:
    """One row per seed: generation 0's median Hal per mode (its in-support stored samples), and
    the share of each mode among filter f's in-support samples at the last generation."""
    fig, axes = plt.subplots(len(runs), 2, figsize=(8, 3.6 * len(runs)), squeeze=False)
    for (seed, run), (ax_hal, ax_share) in zip(runs.items(), axes, strict=True):
        hal = mode_median_hal(run["samples"][f][0], run["hal"][f][0], mixture)
        share = mode_coverage(run["samples"][f][-1], mixture).shares
        for ax, values, title, cmap, fmt in (
            (ax_hal, 1e4 * hal, f"seed {seed}, generation 0: median Hal (1e-4)", "viridis", "{:.1f}"),
            (ax_share, share, f"seed {seed}, generation {len(run['samples'][f]) - 1}, {LABEL[f]}: share",
             "Greys", "{:.2f}"),
        ):
            img = _on_grid(values, mixture)
            im = ax.imshow(img, cmap=cmap)
            for (r, c), v in np.ndenumerate(img):
                dark = im.norm(v) < 0.5 if cmap == "viridis" else im.norm(v) > 0.5
                ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")
            ax.set(xticks=[], yticks=[], title=title)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
