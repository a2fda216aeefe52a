"""Figures and tables of the model-collapse chapter (paper Sec. 6, Fig. 8, 9 and 16): each
generation's samples, the hallucinated share and mode coverage per filter (over seeds, for the
long runs, and which modes the Hal filter keeps), the Frechet distance of the digits per
generation, and whether Hal still marks the less clear digits."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D
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
    network width, training steps, batch, epochs per generation and Hal's window (every
    sampler: T = 500 ancestral steps)."""
    show_table(
        ["run", "generations", "kept", "drawn", "width", "steps", "batch", "epochs / gen.", "Hal over t"],
        [[name, rec.generations, f"{rec.n_keep:,}", f"{rec.n_draw:,}", f"{rec.width}",
          f"{rec.steps:,} + {rec.anneal_steps:,}", f"{rec.batch_size:,}", f"{rec.epochs:,.0f}",
          f"{rec.window[1]}..{rec.window[0]}"] for name, rec in runs],
    )


def generation_table(run: dict, f: str, width: Sequence[float]) -> None:
    """Filter f's run, one row per generation: the hallucinated share of its whole draw, the
    modes covered, their evenness, the mode width (`width`, in sigma) and the final loss."""
    keys = ("drawn_hallucinated", "drawn_modes_covered", "drawn_mode_evenness", "train_loss")
    hal, covered, even, loss = (series(run, f, k) for k in keys)
    show_table(["generation", "hallucinated", "modes covered", "evenness", "mode width (sigma)", "final loss"],
               [[g, f"{hal[g]:.1%}", covered[g], f"{even[g]:.3f}", f"{width[g]:.2f}", f"{loss[g]:.4f}"]
                for g in range(len(hal))])


def filters_table(run: dict, width: dict[str, Sequence[float]]) -> None:
    """Per generation and filter: the hallucinated share of the draw, the modes covered and
    the mode width (`width[f]`, in sigma)."""
    hal = {f: series(run, f, "drawn_hallucinated") for f in FILTERS}
    covered = {f: series(run, f, "drawn_modes_covered") for f in FILTERS}
    show_table(["generation"] + [f"hallucinated, {LABEL[f]}" for f in FILTERS]
               + ["modes covered (none / random / Hal)", "mode width, sigma (none / random / Hal)"],
               [[g] + [f"{hal[f][g]:.1%}" for f in FILTERS]
                + [per_filter(covered, g), per_filter(width, g, "{:.2f}")] for g in range(len(hal["none"]))])


def scatter_row(axes: Sequence[plt.Axes], run: dict, f: str, mixture: GaussianMixture, title: bool = True,
                generations: Sequence[int] | None = None) -> None:
    """One scatter plot per generation (all, or those in `generations`) of filter f's stored
    samples, hallucinated ones in red. The title gives the hallucinated share of the
    generation's whole draw (its metrics, as the tables print it), not of the stored few."""
    gens = range(len(axes)) if generations is None else generations
    if len(gens) != len(axes):
        raise ValueError(f"generations must name one generation per axis ({len(axes)}), got {list(gens)}")
    edge = float(mixture.means.abs().max() + 6 * mixture.sigmas.max())
    lim = (-edge, edge)  # every mode, with its 6 sigma
    share = series(run, f, "drawn_hallucinated")
    for g, ax in zip(gens, axes, strict=True):
        x = run["samples"][f][g]
        scatter_2d(ax, x, mixture, mixture.hallucinated(x), s=1.5)
        ax.set(xlim=lim, ylim=lim, xticks=[], yticks=[])
        if title:
            ax.set_title(f"generation {g}\n{share[g]:.1%} hallucinated", fontsize=10)


def scatter_rows(run: dict, filters: Sequence[str], mixture: GaussianMixture,
                 generations: Sequence[int] | None = None, size: float = 2.4) -> plt.Figure:
    """scatter_row for each filter (one row each, labelled), over every generation or those in
    `generations`."""
    gens = list(range(run["recipe"].generations) if generations is None else generations)
    fig, axes = plt.subplots(len(filters), len(gens), figsize=(size * len(gens), 1.1 * size * len(filters)),
                             squeeze=False)
    for row, f in zip(axes, filters, strict=True):
        scatter_row(row, run, f, mixture, generations=gens)
        row[0].set_ylabel(LABEL[f], fontsize=11)
    fig.tight_layout()
    return fig


def filter_curves(run: dict) -> plt.Figure:
    """Per filter (colour) and generation: the hallucinated share of the drawn (solid) and kept
    (dashed) samples, and the evenness of the mode shares."""
    gens = np.arange(run["recipe"].generations)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for f in FILTERS:
        ax.plot(gens, 100 * series(run, f, "drawn_hallucinated"), "o-", color=COLOR[f])
        ax.plot(gens, 100 * series(run, f, "kept_hallucinated"), "x--", color=COLOR[f], alpha=0.7)
        ax2.plot(gens, series(run, f, "drawn_mode_evenness"), "o-", color=COLOR[f], label=LABEL[f])
    ax.set(xlabel="generation", ylabel="hallucinated (%)", xticks=gens, title="2D grid: hallucinated share")
    ax2.set(xlabel="generation", ylabel="evenness of the mode shares", xticks=gens, title="2D grid: mode coverage")
    handles = [Line2D([], [], color=COLOR[f], lw=2) for f in FILTERS]
    handles += [Line2D([], [], color="black", marker="o"), Line2D([], [], color="black", ls="--", marker="x")]
    ax.legend(handles, [LABEL[f] for f in FILTERS] + ["drawn", "kept"], fontsize=10)
    ax2.legend(fontsize=10)
    fig.tight_layout()
    return fig


def digit_tiles(run: dict, filters: Sequence[str] = ("none", "hal"), n_show: int = 8,
                size: float = 0.75) -> plt.Figure:
    """The first n_show stored 8 x 8 digits of each generation, one row per generation and
    filter, each digit in its own framed tile with a gap; generation 0 once (its model is the
    same under every filter)."""
    rows = [(filters[0], 0)] + [(f, g) for g in range(1, run["recipe"].generations) for f in filters]
    fig, axes = plt.subplots(len(rows), n_show, figsize=(size * n_show + 1.8, 1.08 * size * len(rows)),
                             squeeze=False, gridspec_kw={"wspace": 0.12, "hspace": 0.12})
    for (f, g), row in zip(rows, axes, strict=True):
        for i, ax in enumerate(row):
            ax.imshow(run["samples"][f][g][i].reshape(8, 8).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            for side in ax.spines.values():
                side.set(visible=True, color=COLORS["grey"], linewidth=0.6)
        name = "all filters" if g == 0 else LABEL[f]
        row[0].set_ylabel(f"generation {g}\n{name}", rotation=0, ha="right", va="center", fontsize=10)
    fig.subplots_adjust(left=1.7 / (size * n_show + 1.8), right=0.99, top=0.99, bottom=0.01)
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
    ax.legend(fontsize=9)
    return fig


def digits_table(run: dict) -> None:
    """A digits run, per generation: the Frechet distance of each filter's draw to the real
    digits, and the classes covered and their evenness (none / random / Hal)."""
    fid = {f: series(run, f, "drawn_fid") for f in FILTERS}
    classes = {f: series(run, f, "drawn_classes_covered") for f in FILTERS}
    even = {f: series(run, f, "drawn_class_evenness") for f in FILTERS}
    show_table(["generation"] + [f"Frechet distance, {LABEL[f]}" for f in FILTERS]
               + ["classes covered (none / random / Hal)", "class evenness (none / random / Hal)"],
               [[g] + [f"{fid[f][g]:.1f}" for f in FILTERS]
                + [per_filter(classes, g), per_filter(even, g, "{:.2f}")] for g in range(len(fid["none"]))])


def first_draw_table(run: dict, filters: Sequence[str] = ("random", "hal")) -> None:
    """Generation 0 of a digits run, per filter: the Frechet distance to the real digits of
    the whole draw and of the kept digits, and their mean Hal."""
    keys = (("drawn_fid", "{:.1f}"), ("kept_fid", "{:.1f}"), ("hal_drawn_mean", "{:.2e}"), ("hal_kept_mean", "{:.2e}"))
    show_table(["filter", "distance, drawn", "distance, kept", "mean Hal, drawn", "mean Hal, kept"],
               [[LABEL[f]] + [fmt.format(series(run, f, k)[0]) for k, fmt in keys] for f in filters])


def per_filter(values: dict[str, Sequence[object]], g: int, fmt: str = "{}") -> str:
    """Generation g's value of each filter, 'none / random / Hal'."""
    return " / ".join(fmt.format(values[f][g]) for f in FILTERS)


def fid_seed_curves(fid: dict[int, dict[str, np.ndarray]], floor: float) -> plt.Figure:
    """fid[seed][filter]: the Frechet distance to the real digits per generation, one line per
    seed and filter (colour: filter; marker: seed), over the distance between two halves of
    the real digits (dotted). One legend for the colours and one for the markers."""
    fig, ax = plt.subplots(figsize=(7, 4))
    markers = "os^Dv"
    for i, by_filter in enumerate(fid.values()):
        for f, values in by_filter.items():
            gens = np.arange(len(values))
            ax.plot(gens, values, "-", marker=markers[i % len(markers)], color=COLOR[f], alpha=0.8, ms=5)
    ax.axhline(floor, color="black", ls=":", lw=1)
    ax.set(xlabel="generation", ylabel="Frechet distance to the real digits", xticks=gens,
           title="digits, Hal after the fact: distance per generation", ylim=(0, None))
    filters = list(next(iter(fid.values())))
    handles = [Line2D([], [], color=COLOR[f], lw=2) for f in filters]
    handles += [Line2D([], [], color="black", ls="", marker=markers[i % len(markers)]) for i in range(len(fid))]
    handles.append(Line2D([], [], color="black", ls=":", lw=1))
    ax.legend(handles, [LABEL[f] for f in filters] + [f"seed {s}" for s in fid] + ["two halves of the real digits"],
              fontsize=9, ncol=2, loc="upper left")
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
    ax.legend(fontsize=9)
    return fig


def corner_series(run: dict, f: str, mixture: GaussianMixture) -> np.ndarray:
    """Per generation: the share of filter f's stored in-support samples at the grid's corners."""
    corners = corner_modes(mixture)
    return np.array([mode_share(x, mixture, corners) for x in run["samples"][f]])


def long_run_curves(runs: dict[int, dict], mixture: GaussianMixture) -> plt.Figure:
    """runs[seed]: a long 2D run. Per filter (colour) and seed (line style), generation by
    generation: the hallucinated share of the draw, the modes covered, and the share of the
    in-support samples at the four corners (the data: 4 / 25, dotted). One legend below."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    styles = ["-", "--", ":", "-."]
    for i, (seed, run) in enumerate(runs.items()):
        gens = np.arange(run["recipe"].generations)
        for f in FILTERS:
            style = dict(color=COLOR[f], lw=1.6, ls=styles[i % len(styles)], label=f"{LABEL[f]}, seed {seed}")
            axes[0].plot(gens, 100 * series(run, f, "drawn_hallucinated"), **style)
            axes[1].plot(gens, series(run, f, "drawn_modes_covered"), **style)
            axes[2].plot(gens, corner_series(run, f, mixture), **style)
    axes[2].axhline(len(corner_modes(mixture)) / mixture.n_modes, color="black", ls=":", lw=1, label="the data")
    axes[0].set(ylabel="hallucinated (%)", title="hallucinated share", ylim=(0, 100))
    axes[1].set(ylabel=f"modes covered (of {mixture.n_modes})", title="modes covered", ylim=(0, mixture.n_modes + 1))
    axes[2].set(ylabel="share at the 4 corners", title="in-support, at the corners", ylim=(0, 1.02))
    last = int(gens[-1])
    for ax in axes:
        ax.set_xlabel("generation")
        ax.set_xticks(sorted({*range(0, last + 1, 5), last}))
    handles = [Line2D([], [], color=COLOR[f], lw=2.5) for f in FILTERS]
    handles += [Line2D([], [], color="black", ls=styles[i % len(styles)]) for i in range(len(runs))]
    handles.append(Line2D([], [], color="black", ls=":", lw=1))
    names = [LABEL[f] for f in FILTERS] + [f"seed {s}" for s in runs] + ["corners in the data"]
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=10, handlelength=2.2)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
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
                ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
            ax.set(xticks=[], yticks=[], title=title)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
