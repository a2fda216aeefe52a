"""Figures and tables of the hands chapter (paper Sec. 4.2 and 5, Fig. 5, 20-23): the finger
angles of the two data sets, generated hands titled by their finger count, each hallucinated
hand beside its nearest training hand, and Hal's AUROC by window."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from mi_lib.fingers import N_CLASSES, READ_AS, FingerConfusion
from mi_lib.hands import DIGITS, HandsData
from mi_lib.metrics import Rate
from mi_lib.plotting import COLORS, image_grid
from mi_lib.tables import show_table


def angle_histograms(gapped: HandsData, continuous: HandsData, bins: int = 90) -> plt.Figure:
    """One panel per digit: the histogram of its angle (degrees from the hand's axis) in the
    gapped data (modes with empty gaps) and in the continuous data (the gaps filled)."""
    fig, axes = plt.subplots(1, len(DIGITS), figsize=(13, 2.6), sharey=False)
    edges = np.linspace(-90, 85, bins)
    for j, (ax, digit) in enumerate(zip(axes, DIGITS, strict=True)):
        for data, color, name in ((gapped, COLORS["data"], "gapped"), (continuous, COLORS["model"], "continuous")):
            ax.hist(data.angles[:, j].numpy(), bins=edges, color=color, alpha=0.6, label=name)
        ax.set(title=digit, xlabel="angle (degrees)", yticks=[])
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def finger_title(n: int) -> str:
    """'5 fingers', or 'unreadable' for the counter's -1."""
    return "unreadable" if n < 0 else f"{n} finger" + ("s" if n != 1 else "")


def hands_gallery(images: torch.Tensor, fingers: np.ndarray | torch.Tensor, ncols: int = 8) -> plt.Figure:
    """Hands titled by the counter's reading, in red where it is not five."""
    fingers = np.asarray(fingers)
    return image_grid(images, [finger_title(int(f)) for f in fingers], ncols=ncols,
                      title_colors=["black" if f == 5 else COLORS["hal"] for f in fingers])


def silhouette(images: torch.Tensor) -> torch.Tensor:
    """The hand's pixels (darker than 0.5, the counter's threshold) of images (N, 1, S, S)."""
    return images.reshape(len(images), -1) < 0.5


def nearest_training(images: torch.Tensor, train: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image, the index of the training image nearest in pixel space (Euclidean) and
    the number of pixels on which their silhouettes differ."""
    flat = train.reshape(len(train), -1)
    index = torch.cat([torch.cdist(images[i:i + chunk].reshape(-1, flat.shape[1]), flat).argmin(dim=1)
                       for i in range(0, len(images), chunk)])
    differ = (silhouette(images) != silhouette(train[index])).sum(dim=1)
    return index, differ


def nearest_pairs(images: torch.Tensor, fingers: np.ndarray, train: torch.Tensor, index: torch.Tensor,
                  differ: torch.Tensor, ncols: int = 8) -> plt.Figure:
    """Each generated hand (titled by its reading) beside its nearest training hand (titled by
    how many silhouette pixels differ)."""
    pairs = torch.stack([images, train[index]], dim=1).reshape(-1, *images.shape[1:])
    titles = [t for f, d in zip(fingers, differ.tolist(), strict=True)
              for t in (f"generated: {finger_title(int(f))}", f"nearest: {d} px off")]
    colors = [c for _ in fingers for c in (COLORS["hal"], "black")]
    return image_grid(pairs, titles, ncols=ncols, size=1.5, title_colors=colors)


def rates_table(rates: dict[str, dict[str, Rate]], classes: tuple[str, ...]) -> None:
    """A table with one row per finger class and one column per data set: each Rate with its
    count and 95% interval."""
    names = list(rates)
    show_table(["read as"] + names, [[c] + [rates[n][c].format(1) for n in names] for c in classes])


def confusion_table(confusion: FingerConfusion) -> None:
    """The counter's confusion table: one row per number of digits drawn, one column per
    reading, and the share read correctly."""
    rows = [[str(k)] + [f"{v:,}" for v in row] + [f"{acc:.1%}"]
            for k, row, acc in zip(N_CLASSES, confusion.counts, confusion.accuracy, strict=True)]
    show_table(["drawn \\ read", *READ_AS, "read correctly"], rows)
