"""Figure helpers with one visual style, so that chapter cells show ideas, not plumbing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from mi_lib.mixtures import GaussianMixture

COLORS = {"data": "#4c72b0", "model": "#dd8452", "exact": "#55a868", "hal": "#c44e52", "grey": "#8c8c8c"}


def use_style() -> None:
    """The book's matplotlib style: light grid, no top/right spines, readable sizes."""
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 120, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
        "axes.titlesize": 11, "legend.frameon": False,
    })


def density_over_pdf(
    ax: plt.Axes, samples: torch.Tensor, mixture: GaussianMixture, bins: int = 200,
    label: str = "samples", color: str = COLORS["model"], log: bool = True, xlim: tuple[float, float] | None = None,
) -> None:
    """A density histogram of 1D samples over the mixture's true pdf, on a log scale by
    default (paper Fig. 2): mass between the modes shows up orders of magnitude below them.
    The y axis leaves room above the highest peak, so that the legend sits off the data."""
    x = samples.detach().reshape(-1).double().cpu().numpy()
    lo, hi = xlim if xlim is not None else (float(mixture.means.min()) - 0.5, float(mixture.means.max()) + 0.5)
    ax.hist(x, bins=np.linspace(lo, hi, bins + 1), density=True, color=color, alpha=0.6, label=label)
    grid = torch.linspace(lo, hi, 2000, dtype=torch.float64)[:, None]
    pdf = mixture.log_prob(grid).exp()
    ax.plot(grid[:, 0], pdf, color="black", lw=1, label="true pdf")
    top = float(pdf.max())
    if log:
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 100 * top)  # two decades of headroom: the legend sits above the peaks
    else:
        ax.set_ylim(0, 1.45 * top)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", ncol=2)


def scatter_2d(ax: plt.Axes, samples: torch.Tensor, mixture: GaussianMixture | None = None,
               hallucinated: torch.Tensor | None = None, s: float = 1.0, title: str | None = None,
               legend: bool = False) -> None:
    """2D samples as dots, hallucinated ones in red, the modes as circles. With `legend` (and
    `hallucinated`), a legend for the two colours goes under the axes, off the data."""
    x = samples.detach().double().cpu()
    if hallucinated is None:
        ax.scatter(x[:, 0], x[:, 1], s=s, color=COLORS["model"], alpha=0.5, lw=0)
    else:
        h = hallucinated.cpu()
        ax.scatter(x[~h, 0], x[~h, 1], s=s, color=COLORS["data"], alpha=0.5, lw=0, label="in support")
        ax.scatter(x[h, 0], x[h, 1], s=3 * s, color=COLORS["hal"], alpha=0.8, lw=0, label="hallucinated")
    if mixture is not None:
        ax.scatter(mixture.means[:, 0], mixture.means[:, 1], s=60, facecolors="none", edgecolors=COLORS["grey"],
                   lw=0.6, zorder=0)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    if legend and hallucinated is not None:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, markerscale=4,
                  fontsize=9)


def score_and_denoiser_1d(
    axes: tuple[plt.Axes, plt.Axes], mixture: GaussianMixture, alpha_bar: float,
    xlim: tuple[float, float] = (0.0, 4.0), label: str | None = None, color: str | None = None,
) -> None:
    """The closed-form score grad log p_t(x) (left) and x0 denoiser E[x0 | x_t = x] (right)
    of a 1D mixture noised to alpha_bar, over x (paper Fig. 4)."""
    x = torch.linspace(*xlim, 1500, dtype=torch.float64)[:, None]
    kw = {"label": label, "color": color, "lw": 1.2}
    axes[0].plot(x[:, 0], mixture.score(x, alpha_bar)[:, 0], **kw)
    axes[1].plot(x[:, 0], mixture.x0_denoiser(x, alpha_bar)[:, 0], **kw)
    axes[0].set_ylabel("score  ∇ log p_t(x)")
    axes[1].set_ylabel("x0 denoiser  E[x0 | x_t = x]")
    for ax in axes:
        ax.set_xlabel("x_t")


def score_field_2d(ax: plt.Axes, mixture: GaussianMixture, alpha_bar: float, n: int = 25, lim: float = 1.8) -> None:
    """The closed-form score of a 2D mixture noised to alpha_bar as arrows of unit length
    (the direction only), over the noised modes."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    s = mixture.score(pts, alpha_bar)
    u = s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)
    ax.quiver(pts[:, 0], pts[:, 1], u[:, 0], u[:, 1], color=COLORS["data"],
              angles="xy", scale_units="xy", scale=n / (2 * lim) * 1.3, width=0.004)
    m = mixture.means * alpha_bar**0.5
    ax.scatter(m[:, 0], m[:, 1], marker="x", color="black", s=15, lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)


def image_strip(images: torch.Tensor, titles: list[str] | None = None, size: float = 1.6,
                fontsize: float = 9) -> plt.Figure:
    """A row of greyscale images (N, H, W) with optional titles of `fontsize` points."""
    n = images.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(size * n, size * 1.15), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i].detach().cpu().numpy(), cmap="gray", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if titles:
            ax.set_title(titles[i], fontsize=fontsize)
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, titles: list[str] | None = None, ncols: int = 8, size: float = 1.25,
               title_colors: list[str] | None = None) -> plt.Figure:
    """Greyscale images (N, 1, H, W) or (N, H, W) on a grid of ncols columns, values in [-1, 1],
    with optional titles (and title colours)."""
    images = images.detach().cpu().reshape(images.shape[0], *images.shape[-2:])
    n = images.shape[0]
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 1.18 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.axis("off")
            continue
        # A light frame on all four sides: the style drops the top and right spines, which
        # would leave each white-background tile an L-shaped corner.
        for side in ax.spines.values():
            side.set_visible(True)
            side.set_color("0.75")
        ax.imshow(images[i].numpy(), cmap="gray", vmin=-1, vmax=1)
        if titles:
            ax.set_title(titles[i], fontsize=8, color=(title_colors[i] if title_colors else "black"))
    fig.tight_layout()
    return fig


def x0_hat_tile(ax: plt.Axes, image: torch.Tensor, t: int, window: tuple[int, int], title: bool,
                lw: float = 2.5, fontsize: float = 9) -> None:
    """One frame of an x0_hat strip (paper Sec. 5, Fig. 6): the image (H, W) in grey, without
    spines, framed by a full red rectangle when t lies in Hal's window [t_lo, t_hi], and titled
    "t = ..." (red inside the window) when `title`."""
    ax.imshow(image.numpy(), cmap="gray", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    inside = window[0] <= t <= window[1]
    if inside:
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, lw=lw,
                               edgecolor=COLORS["hal"], clip_on=False))
    if title:
        ax.set_title(f"t = {t}", fontsize=fontsize, color=COLORS["hal"] if inside else "black")
