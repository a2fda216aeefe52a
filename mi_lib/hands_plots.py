"""Figures and tables of the hands chapter and its window study (paper Sec. 4.2 and 5, Fig. 5,
20-23): the finger angles of the two data sets and their gaps, the training losses, generated
hands titled by their finger count, each hallucinated hand beside its nearest training hand,
x0_hat along sampling, Hal's AUROC by kind of hallucination and per hand pixel, and the
text-to-image cell of the talk (FLUX)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import spearmanr

from mi_lib.detection import auroc
from mi_lib.fingers import N_CLASSES, READ_AS, FingerConfusion
from mi_lib.hands import DIGITS, HandsData, render_hands
from mi_lib.metrics import Rate
from mi_lib.plotting import COLORS, image_grid, x0_hat_tile
from mi_lib.tables import show_table


def angle_histograms(gapped: HandsData, continuous: HandsData, bins: int = 90) -> plt.Figure:
    """One panel per digit: the histogram of its angle (degrees from the hand's axis) in the
    gapped data (modes with empty gaps) and in the continuous data (the gaps filled)."""
    fig, axes = plt.subplots(1, len(DIGITS), figsize=(8.5, 2.4), sharey=False)
    edges = np.linspace(-90, 85, bins)
    for j, (ax, digit) in enumerate(zip(axes, DIGITS, strict=True)):
        for data, color, name in ((gapped, COLORS["data"], "gapped"), (continuous, COLORS["model"], "continuous")):
            ax.hist(data.angles[:, j].numpy(), bins=edges, color=color, alpha=0.6, label=name)
        ax.set(title=digit, xlabel="angle (degrees)", yticks=[])
    axes[0].legend(fontsize=8, loc="upper right")
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


def angle_gaps(data: HandsData) -> dict[str, float]:
    """Each digit's widest stretch of angles (degrees) that no hand of `data` has, inside the
    digit's range: more than 20 degrees between the poses of the gapped data (paper Sec. 4.2:
    modes with empty space between them), a fraction of a degree where the gaps are filled."""
    return {digit: float(np.diff(np.sort(data.angles[:, j].numpy())).max()) for j, digit in enumerate(DIGITS)}


def loss_curves(arts: dict[str, dict], window: int = 100) -> plt.Figure:
    """The training loss of each shipped model (arts[kind]["losses"]), a running mean over
    `window` steps, on a log scale."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for (kind, art), color in zip(arts.items(), [COLORS["data"], COLORS["model"]], strict=False):
        losses = art["losses"].numpy()
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(losses)), smooth, color=color, label=f"{kind} (mean of {window} steps)")
    ax.set(xlabel="step", ylabel="loss (mean squared error of v)", yscale="log")
    ax.legend(fontsize=9)
    return fig


def x0_hat_rows(x0_hat: torch.Tensor, times: list[int], picks: list[int], row_labels: list[str],
                window: tuple[int, int], size: float = 1.1) -> plt.Figure:
    """One row per picked sample (x0_hat: (len(times), n, 1, H, W)): its prediction x0_hat at
    each of `times`, large enough to count fingers, the times inside Hal's window [t_lo, t_hi]
    framed by a full red rectangle (paper Sec. 5, Fig. 6); each row labelled on its left."""
    fig, axes = plt.subplots(len(picks), len(times), figsize=(size * len(times) + 1.5, 1.18 * size * len(picks)),
                             squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.08})
    for r, (i, label) in enumerate(zip(picks, row_labels, strict=True)):
        for c, t in enumerate(times):
            x0_hat_tile(axes[r, c], x0_hat[c, i, 0], t, window, r == 0, lw=3, fontsize=10)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    fig.subplots_adjust(left=1.45 / (size * len(times) + 1.5), right=0.99, top=0.9, bottom=0.02)
    return fig



def kind_aurocs(hal: torch.Tensor, fingers: np.ndarray, size: torch.Tensor) -> tuple[float, float, float]:
    """For Hal over one window of a bank (hal, fingers: (n,), the counter's readings; size:
    each hand's pixels): the AUROC of Hal for six fingers against five, for four against five,
    and the Spearman correlation of Hal with the hand's size over the whole bank."""
    m6, m4 = (fingers == 5) | (fingers == 6), (fingers == 5) | (fingers == 4)
    return (auroc(hal[m6], torch.from_numpy(fingers[m6] == 6)), auroc(hal[m4], torch.from_numpy(fingers[m4] == 4)),
            float(spearmanr(hal, size).statistic))


def hal_per_pixel_sweep(art: dict, fingers: np.ndarray) -> list[tuple[tuple[int, int], float, float]]:
    """Per window of a bank (art: hands_model's dict): the AUROC of Hal and of Hal divided by
    the hand's pixels, on its readable hands (hallucinated: not five fingers)."""
    keep = fingers >= 0
    y = torch.from_numpy(fingers[keep] != 5)
    size = silhouette(art["images"][keep]).sum(1).float()
    return [(w, auroc(h, y), auroc(h / size, y)) for w, h in zip(art["recipe"].hal_windows, art["hal"][:, keep],
                                                                   strict=True)]

def flux_hands(run: bool, seed: int, n: int = 4) -> str:
    """Draw n images of the paper's talk prompt ("a left hand placed on a wooden table, top
    view") with FLUX.1 [schnell] (4 steps, no guidance) and show them; or say why not: run is
    False, no CUDA GPU of 40 GB, no diffusers, or the download or sampling failed."""
    if not run:
        return "RUN_FLUX is False"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    if torch.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        return "the GPU has less than 40 GB"
    try:
        from diffusers import FluxPipeline
    except ImportError:
        return "diffusers is not installed (pip install diffusers transformers sentencepiece)"
    try:
        pipe = FluxPipeline.from_pretrained("black-forest-labs/FLUX.1-schnell", torch_dtype=torch.bfloat16)
        out = pipe.to("cuda")("a left hand placed on a wooden table, top view", num_inference_steps=4,
                              guidance_scale=0.0, num_images_per_prompt=n,
                              generator=torch.Generator("cuda").manual_seed(seed)).images
    except Exception as err:  # a download or memory failure must not stop the chapter
        return f"FLUX failed: {err}"
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), squeeze=False)
    for ax, im in zip(axes[0], out, strict=True):
        ax.imshow(im)
        ax.axis("off")
    plt.show()
    return "ran"


def finger_pixels(n: int, seed: int) -> float:
    """How many pixels one finger covers: the median, over n rendered hands, of the silhouette
    pixels that differ between the same hand drawn with six digits and with five."""
    six, five = (render_hands(n, seed=seed, n_fingers=k).images for k in (6, 5))
    return float((silhouette(six) != silhouette(five)).sum(1).float().median())
