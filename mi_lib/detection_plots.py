"""Figures of the detection chapter (paper Sec. 5, Fig. 6 and 7): x0_hat trajectories, Hal
histograms, ROC curves with the paper's operating point, and x0_hat image strips.

Each function draws on axes it is given or returns a figure; the chapter computes, these draw.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from mi_lib.detection import roc
from mi_lib.metrics import Rate
from mi_lib.mixtures import GaussianMixture
from mi_lib.plotting import COLORS, x0_hat_tile


def first_of_each(y: torch.Tensor, k: int = 3) -> tuple[list[int], list[int]]:
    """The indices of the first k in-support and the first k hallucinated samples of labels y."""
    return (~y).nonzero().flatten()[:k].tolist(), y.nonzero().flatten()[:k].tolist()


def x0_hat_paths_1d(traj: torch.Tensor, y: torch.Tensor, mixture: GaussianMixture,
                    window: tuple[int, int], k: int = 3) -> plt.Figure:
    """x0_hat against the reverse step t for the first k in-support (blue) and hallucinated
    (red) samples of a 1D trajectory (T, n, 1), row i holding step T-1-i: the last 300 steps,
    and the last 60 with the Hal window [t_lo, t_hi] shaded (paper Fig. 6)."""
    T = traj.shape[0]
    ts = np.arange(T - 1, -1, -1)
    good, bad = first_of_each(y, k)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), gridspec_kw={"width_ratios": [1, 1.3]})
    for ax, last in zip(axes, (301, 60), strict=True):
        for idx, color in [(good, COLORS["data"]), (bad, COLORS["hal"])]:
            for i in idx:
                ax.plot(ts[-last:], traj[-last:, i, 0], color=color, lw=1)
        for mu in mixture.means[:, 0]:
            ax.axhline(float(mu), color=COLORS["grey"], lw=0.6, ls=":")
        ax.set(xlim=(ts[-last], 0), xlabel="reverse step t", ylabel="x0_hat", ylim=(-0.5, 4.5))
    axes[1].axvspan(*window[::-1], color=COLORS["grey"], alpha=0.2, label="Hal window")
    axes[1].plot([], [], color=COLORS["data"], label="ends on a mode")
    axes[1].plot([], [], color=COLORS["hal"], label="ends between modes")
    axes[1].legend(loc="upper left", fontsize=9)
    axes[0].set_title("last 300 steps")
    axes[1].set_title("last 60 steps")
    fig.tight_layout()
    return fig


def x0_hat_paths_2d(traj: torch.Tensor, x_end: torch.Tensor, y: torch.Tensor, mixture: GaussianMixture,
                    last: int = 30, k: int = 3) -> plt.Figure:
    """One panel per sample: its x0_hat over the last `last` steps (light to dark) and its end
    point (star), over discs of radius 6 sigma around the modes; the first k in-support samples
    on the top row, the first k hallucinated ones below."""
    good, bad = first_of_each(y, k)
    fig, axes = plt.subplots(2, k, figsize=(8, 5.0), squeeze=False)
    for row, (idx, label) in enumerate([(good, "in support"), (bad, "hallucinated")]):
        for ax, i in zip(axes[row], idx, strict=False):
            path, end = traj[-last:, i, :].numpy(), x_end[i].numpy()
            for mu, s in zip(mixture.means, mixture.sigmas, strict=True):
                ax.add_patch(plt.Circle(mu.tolist(), 6 * float(s), color=COLORS["grey"], alpha=0.25, lw=0))
            ax.plot(path[:, 0], path[:, 1], color=COLORS["grey"], lw=0.6)
            ax.scatter(path[:, 0], path[:, 1], c=np.arange(last), cmap="viridis_r", s=12, zorder=3)
            ax.scatter(*end, marker="*", s=140, color=COLORS["hal"] if row else COLORS["data"], zorder=4)
            pts = np.vstack([path, end[None]])
            centre = (pts.max(0) + pts.min(0)) / 2
            r = max(0.3, 0.6 * float((pts.max(0) - pts.min(0)).max()))
            ax.set(xlim=(centre[0] - r, centre[0] + r), ylim=(centre[1] - r, centre[1] + r), aspect="equal")
            ax.set_title(f"{label}, sample {i}", fontsize=10)
            ax.locator_params(nbins=4)
    fig.suptitle(f"x0_hat over the last {last} steps (light: t = {last - 1}, dark: t = 0)", fontsize=11)
    fig.tight_layout()
    return fig


def hal_histograms(ax: plt.Axes, hal: torch.Tensor, y: torch.Tensor, title: str, bins: int = 50,
                   threshold: float | None = None, density: bool = True,
                   threshold_label: str = "threshold: 95% removed") -> None:
    """Histograms of log10 Hal for in-support (blue) and hallucinated (red) samples, with the
    threshold as a dashed line when given."""
    lh = hal.double().log10()
    edges = np.linspace(float(lh.min()), float(lh.max()), bins)
    for mask, color, name in ((~y, COLORS["data"], "in support"), (y, COLORS["hal"], "hallucinated")):
        ax.hist(lh[mask].numpy(), bins=edges, density=density, alpha=0.6, color=color,
                label=f"{name} ({int(mask.sum()):,})")
    if threshold is not None:
        ax.axvline(np.log10(threshold), color="black", ls="--", lw=1, label=threshold_label)
    ax.set(xlabel="log10 Hal", ylabel="density" if density else "samples", title=title)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.4)  # room for the legend above the bars
    # an opaque box, so that the threshold line does not run through the labels
    ax.legend(fontsize=9, loc="upper left", frameon=True, framealpha=0.9, edgecolor="none")


def distance_handles() -> list[Line2D]:
    """Legend entries of `hal_against_distance`, with markers large enough to read."""
    return [Line2D([], [], ls="", marker="o", ms=5, color=COLORS["data"], label="in support"),
            Line2D([], [], ls="", marker="o", ms=5, color=COLORS["hal"], label="hallucinated"),
            Line2D([], [], color="black", marker="o", ms=4, label="median per bin"),
            Line2D([], [], color="black", lw=0.8, ls="--", label="6 sigma")]


def distance_legend(fig: plt.Figure) -> None:
    """One legend for a row of `hal_against_distance` panels, above them, off the data."""
    fig.legend(handles=distance_handles(), loc="upper center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.9))


def hal_against_distance(ax: plt.Axes, k: torch.Tensor, hal: torch.Tensor, y: torch.Tensor, title: str,
                         bins: list[float], legend: bool = True) -> list[tuple[float, float, torch.Tensor]]:
    """Hal against the distance to the nearest mode in sigmas k, with the median per distance
    bin (bins with at least 20 samples) and the 6 sigma line; returns (lo, hi, Hal) per bin.
    legend=False leaves the legend to `distance_legend`."""
    ax.scatter(k[~y], hal[~y], s=1, alpha=0.3, color=COLORS["data"], label="in support")
    ax.scatter(k[y], hal[y], s=3, alpha=0.8, color=COLORS["hal"], label="hallucinated")
    binned = [(lo, hi, hal[(k >= lo) & (k < hi)]) for lo, hi in zip(bins, bins[1:], strict=False)]
    full = [(lo, hi, h) for lo, hi, h in binned if len(h) >= 20]
    ax.plot([(lo + min(hi, 20)) / 2 for lo, hi, _ in full], [h.median() for _, _, h in full], "k-o", ms=4,
            label="median per bin")
    ax.axvline(6, color="black", lw=0.8, ls="--", label="6 sigma")
    ax.set(xscale="log", yscale="log", xlabel="distance to nearest mode (sigmas)", ylabel="Hal", title=title)
    if legend:
        ax.legend(handles=distance_handles(), loc="lower right", fontsize=9)
    return binned


def roc_with_paper(ax: plt.Axes, hal: torch.Tensor, y: torch.Tensor, auroc: float, removed: Rate, kept: Rate,
                   paper: tuple[float, float], title: str = "", ours: str = "ours: 95% removed") -> None:
    """The ROC curve of Hal (hallucinations removed against in-support samples removed), with
    our operating point (labelled `ours`) and the paper's (removed, kept) as a star."""
    fpr, tpr, _ = roc(hal, y)
    ax.plot(fpr, tpr, color=COLORS["model"], lw=1.5, label=f"Hal, AUROC {auroc:.3f}")
    ax.plot([0, 1], [0, 1], color=COLORS["grey"], lw=0.8, ls=":", label="chance")
    ax.scatter(1 - kept.rate, removed.rate, color=COLORS["model"], zorder=3, label=ours)
    ax.scatter(1 - paper[1], paper[0], marker="*", s=120, color="black", zorder=3, label="paper")
    ax.set(xlabel="in-support samples removed (1 - kept)", ylabel="hallucinations removed", title=title,
           aspect="equal", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=9)


def window_sweep(sweep: dict[tuple[int, int], float], length: int, paper_window: tuple[int, int]) -> plt.Figure:
    """AUROC of windows of `length` steps by their start t1 (left), and of windows ending at
    t = 0 by their length (right), with the paper's window as a dashed line."""
    position = [(w[0], a) for w, a in sweep.items() if w[1] - w[0] == length - 1]
    lengths = sorted((w[1] + 1, a) for w, a in sweep.items() if w[0] == 0)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4), sharey=True)
    axes[0].plot(*zip(*position, strict=True), "o-", color=COLORS["model"])
    axes[0].set(xscale="symlog", xlabel=f"start t1 of a window of {length} steps",
                ylabel="AUROC", title="where")
    ticks = [t for t in (0, 5, 15, 50, 200, 1000) if t <= max(p[0] for p in position) * 1.1]
    axes[0].set_xticks(ticks, [str(t) for t in ticks])
    axes[0].minorticks_off()
    axes[1].plot(*zip(*lengths, strict=True), "o-", color=COLORS["model"])
    axes[1].set(xscale="log", xlabel="length L of a window t = L - 1 .. 0", title="how long")
    for ax in axes:
        ax.axhline(0.5, color=COLORS["grey"], ls=":", lw=0.8)
        ax.axhline(sweep[paper_window], color="black", ls="--", lw=0.8,
                   label=f"paper's window (t = {paper_window[1]}..{paper_window[0]})")
        ax.set_ylim(0.3, 1)
    axes[0].legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    return fig


def x0_hat_image_strips(x0_hat: torch.Tensor, times: list[int], picks: list[int], labels: list[str],
                        hal: torch.Tensor, window: tuple[int, int]) -> plt.Figure:
    """One row per picked sample: its x0_hat image at each of `times` (x0_hat: (len(times), n,
    1, H, W)), the columns inside the Hal window [t_lo, t_hi] framed by a full red rectangle
    (paper Sec. 5, Fig. 6); each row says the sample's label and Hal."""
    size = 0.85
    fig, axes = plt.subplots(len(picks), len(times), figsize=(size * len(times) + 1.4, 1.12 * size * len(picks) + 0.5),
                             squeeze=False, gridspec_kw={"wspace": 0.1, "hspace": 0.1})
    for r, i in enumerate(picks):
        for c, t in enumerate(times):
            x0_hat_tile(axes[r, c], x0_hat[c, i, 0], t, window, r == 0)
        axes[r, 0].set_ylabel(f"{labels[i]}\nHal {float(hal[i]):.1e}", rotation=0, ha="right", va="center",
                              fontsize=9, color=COLORS["hal"] if labels[i] == "hallucinated" else "black")
    fig.subplots_adjust(left=1.3 / (size * len(times) + 1.4), right=0.99, top=0.86, bottom=0.02)
    fig.suptitle("x0_hat during sampling; red frames: the Hal window", fontsize=10)
    return fig


def window_aurocs(ax: plt.Axes, labels: list[str], aurocs: list[float], intervals: list[tuple[float, float]],
                  chosen: int) -> None:
    """AUROC of Hal by window, with bootstrap intervals; the chosen window in red."""
    x = np.arange(len(labels))
    lo = [a - i[0] for a, i in zip(aurocs, intervals, strict=True)]
    hi = [i[1] - a for a, i in zip(aurocs, intervals, strict=True)]
    colors = [COLORS["hal"] if k == chosen else COLORS["model"] for k in x]
    ax.bar(x, aurocs, color=colors, alpha=0.8)
    ax.errorbar(x, aurocs, yerr=[lo, hi], fmt="none", color="black", capsize=3, lw=1)
    ax.axhline(0.5, color=COLORS["grey"], ls=":", lw=0.8, label="chance")
    ax.set_xticks(x, labels)
    ax.set(xlabel="window (original t)", ylabel="AUROC", ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=9)


def after_the_fact_figure(during: dict[str, torch.Tensor], after: dict[str, list[torch.Tensor]],
                          y: dict[str, torch.Tensor], titles: dict[str, str], rho: dict[str, float]) -> plt.Figure:
    """Hal after the fact (one re-noising) against Hal recorded while sampling, per data set,
    log-log with the rank correlation rho in the title; and the ROC curves of the first data
    set's three scores: while sampling, after the fact, and the mean of the re-noisings."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4), gridspec_kw={"wspace": 0.5})
    for ax, name in zip(axes[:2], during, strict=False):
        d, a, lab = during[name], after[name][0], y[name]
        ax.scatter(d[~lab], a[~lab], s=1, alpha=0.3, color=COLORS["data"])
        ax.scatter(d[lab], a[lab], s=3, alpha=0.8, color=COLORS["hal"])
        ax.set(xscale="log", yscale="log", xlabel="Hal while sampling", ylabel="Hal after (1 draw)",
               title=f"{titles[name]}\nrho = {rho[name]:.2f}")
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=COLORS["data"], label="in support"),
               Line2D([], [], ls="", marker="o", ms=5, color=COLORS["hal"], label="hallucinated")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.36, 0.0))
    fig.subplots_adjust(bottom=0.28, top=0.84)
    name = next(iter(during))
    n = len(after[name])
    for label, score, color in [("during", during[name], COLORS["model"]), ("after, 1", after[name][0], COLORS["data"]),
                                (f"after, {n}", torch.stack(after[name]).mean(0), COLORS["exact"])]:
        fpr, tpr, _ = roc(score, y[name])
        axes[2].plot(fpr, tpr, color=color, label=label)
    axes[2].set(xlabel="in support removed", ylabel="hallucinations removed", title=f"{titles[name]}: ROC",
                aspect="equal", xlim=(0, 1), ylim=(0, 1.01))
    axes[2].legend(loc="lower right", fontsize=9)
    return fig
