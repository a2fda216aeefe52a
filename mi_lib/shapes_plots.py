"""Figures and tables of the Simple Shapes chapter (paper Sec. 4.2, Fig. 1 and 10): the
combinations the data holds, the counter's validation, generated images titled by their
reading, each hallucination beside its nearest training image, and the U-Net's bottleneck
features of generated images: their t-SNE map and where the two-square images lie between the
two single-square groups, measured in the features themselves."""

from __future__ import annotations

from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.manifold import TSNE

from mi_lib.metrics import Rate, rate, wilson_interval
from mi_lib.plotting import COLORS, image_grid
from mi_lib.shapes import COLUMN, KINDS, SIZE, Reading, read_image
from mi_lib.tables import show_table

LABEL_COLORS = {"in support": "black", "hallucinated": COLORS["hal"], "unreadable": COLORS["grey"]}
GROUPS = ("one square, top", "one square, bottom", "two squares")
GROUP_COLORS = dict(zip(GROUPS, (COLORS["data"], COLORS["exact"], COLORS["hal"]), strict=True))


def combo_name(present: torch.Tensor | np.ndarray | tuple[bool, ...]) -> str:
    """The shapes an image holds, e.g. 'triangle + pentagon', from its three flags
    (triangle, square, pentagon present)."""
    return " + ".join(k for k, p in zip(KINDS, [bool(p) for p in present], strict=True) if p)


def combination_table(present: torch.Tensor, z: float = 3.29) -> dict[str, tuple[int, float, float]]:
    """Show how many images hold each combination of shapes (fewest shapes first), its share
    and the Wilson interval of that share (z = 3.29: 99.9%). Returns {name: (count, low, high)}."""
    n = len(present)
    combos, counts = np.unique(np.asarray(present, dtype=bool), axis=0, return_counts=True)
    order = sorted(range(len(combos)), key=lambda i: (combos[i].sum(), tuple(combos[i])))
    out = {combo_name(combos[i]): (int(counts[i]), *wilson_interval(int(counts[i]), n, z=z)) for i in order}
    show_table(["shapes", "images", "share", f"{1 - 2 * _tail(z):.1%} interval"],
               [[k, f"{c:,}", f"{c / n:.1%}", f"{lo:.1%} to {hi:.1%}"] for k, (c, lo, hi) in out.items()])
    return out


def _tail(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    from math import erfc, sqrt

    return erfc(z / sqrt(2)) / 2


def share_read_exactly(readings: list[Reading], present: torch.Tensor) -> Rate:
    """The share of images read exactly: labelled in support, with each kind counted as many
    times as `present` says (0 or 1) in its own column."""
    ok = [r.label == "in support" and (np.diag(r.counts) == p.numpy()).all()
          for r, p in zip(readings, present, strict=True)]
    return rate(torch.tensor(ok))


def caught_two(images: torch.Tensor, kind: str) -> Rate:
    """The share of images built with two shapes of `kind` (mi_lib.shapes.two_of_a_kind)
    that the counter calls hallucinated, with exactly two of that kind in its column."""
    k = KINDS.index(kind)
    readings = [read_image(im) for im in images]
    return rate(torch.tensor([r.label == "hallucinated" and r.counts[k, k] == 2 for r in readings]))


def shapes_grid(images: torch.Tensor, titles: list[str], ncols: int = 6, colors: list[str] | None = None,
                fontsize: float = 10) -> plt.Figure:
    """mi_lib.plotting.image_grid with titles large enough to read at page width: a title
    over 16 characters breaks after its last ' +'."""
    titles = [" +\n".join(t.rsplit(" + ", 1)) if len(t) > 16 else t for t in titles]
    fig = image_grid(images, titles, ncols=ncols, size=1.25, title_colors=colors)
    for ax in fig.axes:
        ax.title.set_fontsize(fontsize)
    fig.tight_layout()
    return fig


def labelled_gallery(images: torch.Tensor, labels: list[str] | np.ndarray, ncols: int = 6) -> plt.Figure:
    """Images titled by the counter's label: black in support, red hallucinated, grey
    unreadable."""
    labels = [str(lab) for lab in labels]
    return shapes_grid(images, labels, ncols=ncols, colors=[LABEL_COLORS[lab] for lab in labels])


def loss_curve(losses: torch.Tensor, window: int = 50) -> tuple[plt.Figure, np.ndarray]:
    """The training loss per step and its running mean over `window` steps, on a log scale.
    Returns the figure and the running mean."""
    loss = losses.numpy()
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(loss, color=COLORS["grey"], lw=0.5, label="loss per step")
    ax.plot(np.arange(window - 1, len(loss)), smooth, color=COLORS["model"], label=f"mean of {window} steps")
    ax.set(xlabel="step", ylabel="loss (MSE of v)", yscale="log")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig, smooth


def kind_counts(readings: list[Reading]) -> np.ndarray:
    """(n, 3): how many shapes of each kind the counter found in that kind's own column."""
    return np.stack([np.diag(r.counts) for r in readings])


def nearest_training(images: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image, the index of the training image nearest in pixel space (Euclidean)
    and the number of pixels on which the two differ after thresholding at 0."""
    flat = train.reshape(len(train), -1)
    index = torch.cdist(images.reshape(len(images), -1), flat).argmin(dim=1)
    differ = ((images > 0) != (train[index] > 0)).reshape(len(images), -1).sum(1)
    return index, differ


def pairs_figure(images: torch.Tensor, nearest: torch.Tensor, differ: torch.Tensor, ncols: int = 6) -> plt.Figure:
    """Each generated image beside its nearest training image, titled by how many pixels
    differ."""
    pairs = torch.stack([images, nearest], dim=1).reshape(-1, 1, SIZE, SIZE)
    titles = [t for d in differ.tolist() for t in ("generated", f"nearest: {d} px")]
    colors = [c for _ in differ for c in (COLORS["hal"], "black")]
    return shapes_grid(pairs, titles, ncols=ncols, colors=colors)


def square_row(image: torch.Tensor) -> float:
    """The mean row of the ink (pixels above 0) in the middle column, the squares' column."""
    ink = image.reshape(SIZE, SIZE)[:, COLUMN:2 * COLUMN] > 0
    return float(torch.nonzero(ink)[:, 0].float().mean())


def square_groups(images: torch.Tensor, readings: list[Reading]) -> dict[str, np.ndarray]:
    """Indices of the images with one square above the middle row (31.5) and in support,
    with one square below it and in support, and with two squares (paper Fig. 10's groups)."""
    squares = kind_counts(readings)[:, 1]
    support = np.array([r.label == "in support" for r in readings])
    one = np.flatnonzero((squares == 1) & support)
    rows = np.array([square_row(images[i]) for i in one])
    return {GROUPS[0]: one[rows < 31.5], GROUPS[1]: one[rows >= 31.5], GROUPS[2]: np.flatnonzero(squares == 2)}


@torch.no_grad()
def bottleneck_features(model: torch.nn.Module, images: torch.Tensor, t: int = 0, chunk: int = 200) -> torch.Tensor:
    """The U-Net's bottleneck output (model.features) at step t, one flat row per image."""
    t = torch.tensor(t)
    return torch.cat([model.features(images[i:i + chunk], t).reshape(len(images[i:i + chunk]), -1)
                      for i in range(0, len(images), chunk)])


def tsne_map(feats: torch.Tensor, groups: dict[str, np.ndarray], seed: int = 0) -> plt.Figure:
    """t-SNE (perplexity 30, PCA start) of the groups' features, one colour per group, the
    legend beside the map (paper Fig. 10)."""
    sel = np.concatenate(list(groups.values()))
    emb = TSNE(n_components=2, perplexity=30, init="pca", random_state=seed).fit_transform(feats[sel].numpy())
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    start = 0
    for name, members in groups.items():
        e = emb[start:start + len(members)]
        big = name == GROUPS[2]
        ax.scatter(e[:, 0], e[:, 1], s=30 if big else 10, color=GROUP_COLORS[name], label=f"{name} ({len(members)})",
                   marker="D" if big else "o", edgecolors="white" if big else "none", linewidths=0.5,
                   zorder=3 if big else 2)
        start += len(members)
    ax.set(xticks=[], yticks=[], title="t-SNE of the bottleneck features")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=10, frameon=False, markerscale=1.5)
    fig.tight_layout()
    return fig


class Between(NamedTuple):
    """Where each group's features lie relative to the segment from c_top (the mean feature
    vector of 'one square, top') to c_bottom: `position` is lambda (0 at c_top, 1 at
    c_bottom), `off_axis` the distance to the segment, `length` the segment's length."""

    position: dict[str, torch.Tensor]
    off_axis: dict[str, torch.Tensor]
    length: float


def between(feats: torch.Tensor, groups: dict[str, np.ndarray]) -> Between:
    """Project each group's features on the segment between the two single-square centres."""
    c_top, c_bot = (feats[groups[g]].mean(0) for g in GROUPS[:2])
    axis = c_bot - c_top
    position, off = {}, {}
    for name, members in groups.items():
        f = feats[members]
        lam = (f - c_top) @ axis / axis.dot(axis)
        position[name] = lam
        off[name] = (f - c_top - lam.clamp(0, 1)[:, None] * axis).norm(dim=1)
    return Between(position, off, float(axis.norm()))


def between_table(b: Between) -> dict[str, dict[str, float]]:
    """Show, per group, the median and range of lambda, the share nearer c_top than c_bottom
    (lambda < 1/2, the same thing) and the median distance to the segment; return them."""
    out = {}
    for name, lam in b.position.items():
        out[name] = {"n": len(lam), "median": float(lam.median()), "min": float(lam.min()), "max": float(lam.max()),
                     "nearer top": float((lam < 0.5).float().mean()), "off": float(b.off_axis[name].median())}
    show_table(["group", "images", "median lambda", "range of lambda", "nearer c_top", "distance to segment"],
               [[k, v["n"], f"{v['median']:.2f}", f"{v['min']:.2f} to {v['max']:.2f}", f"{v['nearer top']:.0%}",
                 f"{v['off']:.1f}"] for k, v in out.items()])
    return out


def lambda_histograms(b: Between) -> plt.Figure:
    """Histograms of lambda per group, the two centres marked at 0 and 1 and the midpoint
    dashed, the legend above the panel."""
    fig, ax = plt.subplots(figsize=(7, 3.0))
    for name, lam in b.position.items():
        ax.hist(lam.numpy(), bins=44, range=(-0.6, 1.6), alpha=0.6, color=GROUP_COLORS[name], density=True,
                label=name)
    ax.axvline(0.5, color="black", ls="--", lw=1)
    ax.set(xlabel="lambda: 0 at c_top, 1 at c_bottom", ylabel="density", xticks=[-0.5, 0, 0.5, 1, 1.5])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


class Neighbours(NamedTuple):
    """Among each two-square image's k nearest neighbours in feature space (within the
    groups), the share that are two-square images (`share`), what a random set of as many
    images gets (`chance`, the mean, and `chance_99`, the 99th percentile over draws), and the
    shares that are top and bottom single-square images; `own` is, per single-square group,
    the share of its members' neighbours in the same group."""

    share: float
    chance: float
    chance_99: float
    top: float
    bottom: float
    own: dict[str, float]


def neighbours(feats: torch.Tensor, groups: dict[str, np.ndarray], k: int = 10, draws: int = 1000,
               seed: int = 0) -> Neighbours:
    """Nearest-neighbour shares of the groups (Euclidean distance on the features)."""
    sel = np.concatenate(list(groups.values()))
    group = np.concatenate([[i] * len(m) for i, m in enumerate(groups.values())])
    d = torch.cdist(feats[sel], feats[sel])
    d.fill_diagonal_(float("inf"))
    nn = d.topk(k, largest=False).indices.numpy()
    two = group == 2
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(draws):
        member = np.zeros(len(sel), dtype=bool)
        member[rng.choice(len(sel), int(two.sum()), replace=False)] = True
        null.append(member[nn[member]].mean())
    return Neighbours(float((group[nn[two]] == 2).mean()), float(np.mean(null)), float(np.quantile(null, 0.99)),
                      float((group[nn[two]] == 0).mean()), float((group[nn[two]] == 1).mean()),
                      {g: float((group[nn[group == i]] == i).mean()) for i, g in enumerate(GROUPS[:2])})

