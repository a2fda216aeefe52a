"""A finger counter for images of one hand on a white background (mi_lib.hands), real or
generated, so that a sampler's hands can be labelled: five fingers, or extra or missing ones
(paper Fig. 5, 20-23; the paper labelled its 130 samples by hand).

How it reads a hand: the silhouette is every pixel darker than a threshold (0.5, between the
white background and any skin tone) after a light Gaussian smoothing (which keeps a sampler's
pixel noise from punching holes or leaving specks); its largest 8-connected blob, holes
filled, is the hand. The palm is the widest part of a hand: its centre is where the distance
to the background is largest (the distance transform's maximum; the mean position where it
is within half a pixel of it) and that distance is the palm radius R. Every finger leaves the
palm and crosses a circle of 1.6-2 R around that centre, beyond the palm's corners (about
1.3 R) and where fanned-out fingers are apart (mi_lib.hands aims its digits 20-30 degrees
apart through a circle of 2 of its palm radii, which the distance transform reads as ~1.1 R):
the number of separate arcs of silhouette on such a circle is the number of fingers. It is
read on three circles, CIRCLES = 1.6, 1.8 and 2.0 R, and the median taken, so that one circle
that grazes a fingertip or the web between two fingers does not decide. The hands of
mi_lib.hands have no arm; an arm would be one more arc (and is not excluded).

It says "unreadable" instead of guessing when there is no hand (no blob of at least 1% of the
image), when the blob covers more than half of the image (no white background), when there
are several hands (a second blob at least a fifth of the largest; smaller specks are
ignored), when the blob has no palm (R under 1.5 pixels) or when a circle lies wholly inside
the hand.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from mi_lib.checks import check_int_at_least, check_non_negative, check_positive_int, check_seed
from mi_lib.hands import render_hands
from mi_lib.metrics import Rate, rate

CIRCLES = (1.6, 1.8, 2.0)  # radii of the reading circles, in palm radii
N_CLASSES = (3, 4, 5, 6, 7)
READ_AS = ("<=2", "3", "4", "5", "6", "7", ">=8", "unreadable")


class FingerReading(NamedTuple):
    """What the counter read in one image: n_fingers (None when unreadable), why ('read', or
    the reason it is unreadable), the palm's centre (row, col) and radius R in pixels (NaN
    when no palm was found)."""

    n_fingers: int | None
    why: str
    centre: tuple[float, float]
    palm_radius: float


def _arcs(hand: np.ndarray, centre: tuple[float, float], radii: list[float], min_arc: float = 1.0) -> list[int | None]:
    """For each radius (pixels), the number of separate arcs of the silhouette `hand` (float, 1
    inside) on the circle around `centre` (row, col), arcs shorter than min_arc pixels not
    counted; None when the whole circle lies in the silhouette."""
    m = max(180, int(8 * math.pi * max(radii)))
    phi = np.linspace(0, 2 * math.pi, m, endpoint=False)
    rad = np.asarray(radii)[:, None]
    rows, cols = centre[0] - 0.5 + rad * np.cos(phi), centre[1] - 0.5 + rad * np.sin(phi)
    inside = ndimage.map_coordinates(hand, [rows.ravel(), cols.ravel()], order=1, cval=0.0).reshape(len(radii), m)
    counts: list[int | None] = []
    for radius, on in zip(radii, inside > 0.5, strict=True):
        if on.all():
            counts.append(None)
            continue
        on = np.roll(on, -int(np.argmin(on)))  # start on the background, so no arc wraps around
        edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        counts.append(int((lengths * 2 * math.pi * radius / m >= min_arc).sum()))
    return counts


def _read_silhouette(ink: np.ndarray) -> FingerReading:
    """Read one silhouette (S, S) bool (see the module's docstring)."""
    nowhere = (math.nan, math.nan)
    labels, k = ndimage.label(ink, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel())[1:]
    if k == 0 or areas.max() < 0.01 * ink.size:
        return FingerReading(None, "no hand", nowhere, math.nan)
    order = np.argsort(areas)[::-1]
    if k > 1 and areas[order[1]] >= 0.2 * areas[order[0]]:
        return FingerReading(None, "several blobs", nowhere, math.nan)
    if areas[order[0]] > 0.5 * ink.size:
        return FingerReading(None, "no white background", nowhere, math.nan)
    hand = ndimage.binary_fill_holes(labels == order[0] + 1)
    dist = ndimage.distance_transform_edt(np.pad(hand, 1))[1:-1, 1:-1]  # outside the image is background
    radius = float(dist.max())
    if radius < 1.5:
        return FingerReading(None, "no palm", nowhere, radius)
    rows, cols = np.nonzero(dist >= radius - 0.5)
    centre = (float(rows.mean()) + 0.5, float(cols.mean()) + 0.5)  # pixel centres sit at +0.5
    counts = _arcs(hand.astype(np.float32), centre, [f * radius for f in CIRCLES])
    if None in counts:
        return FingerReading(None, "circle inside the hand", centre, radius)
    return FingerReading(int(np.median(counts)), "read", centre, radius)


def _silhouettes(images: torch.Tensor | np.ndarray, threshold: float, smooth: float) -> np.ndarray:
    """The hand pixels (N, S, S) of images given as (N, 1, S, S), (N, S, S) or (S, S), on any device."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
    img = np.asarray(images, dtype=np.float32)
    if img.ndim == 2:
        img = img[None]
    if img.ndim == 4 and img.shape[1] == 1:
        img = img[:, 0]
    if img.ndim != 3 or img.shape[1] != img.shape[2]:
        raise ValueError(f"images must be (N, 1, S, S), (N, S, S) or (S, S), got shape {tuple(np.shape(images))}")
    if not (isinstance(threshold, (int, float)) and -1 < threshold < 1):
        raise ValueError(f"threshold must be a number in (-1, 1), got {threshold!r}")
    check_non_negative("smooth", smooth)
    if smooth > 0:
        img = ndimage.gaussian_filter(img, sigma=(0, smooth, smooth), mode="nearest")
    return img < threshold


def read_hand(image: torch.Tensor | np.ndarray, threshold: float = 0.5, smooth: float = 0.7) -> FingerReading:
    """Count the fingers of the one hand in an image (S, S) or (1, S, S) with values in
    [-1, 1] and a white background: pixels below threshold after a Gaussian smoothing of
    `smooth` pixels are the hand (see the module's docstring)."""
    ink = _silhouettes(image, threshold, smooth)
    if len(ink) != 1:
        raise ValueError(f"image must be one image, got shape {tuple(np.shape(image))}")
    return _read_silhouette(ink[0])


def count_fingers(images: torch.Tensor | np.ndarray, threshold: float = 0.5, smooth: float = 0.7) -> np.ndarray:
    """The finger count of each image (N, 1, S, S) as read by read_hand, -1 where unreadable."""
    readings = [_read_silhouette(ink) for ink in _silhouettes(images, threshold, smooth)]
    return np.array([-1 if r.n_fingers is None else r.n_fingers for r in readings], dtype=np.int64)


class FingerConfusion(NamedTuple):
    """How the counter reads hands drawn with a known number of fingers: counts (5, 8), rows
    the true number (N_CLASSES: 3-7), columns what was read (READ_AS: <=2, 3, ..., 7, >=8,
    unreadable)."""

    counts: np.ndarray

    @property
    def accuracy(self) -> np.ndarray:
        """Share read correctly, per true number of fingers."""
        return np.array([self.counts[i, i + 1] for i in range(len(N_CLASSES))]) / self.counts.sum(1)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in READ_AS)
        rows = "".join(
            f"<tr><th>{k}</th>" + "".join(f"<td>{v}</td>" for v in row) + f"<td>{acc:.1%}</td></tr>"
            for k, row, acc in zip(N_CLASSES, self.counts, self.accuracy, strict=True)
        )
        return f"<table><tr><th>drawn \\ read</th>{head}<th>accuracy</th></tr>{rows}</table>"

    def __str__(self) -> str:
        lines = ["drawn\\read " + " ".join(f"{c:>5}" for c in READ_AS) + "  accuracy"]
        for k, row, acc in zip(N_CLASSES, self.counts, self.accuracy, strict=True):
            lines.append(f"{k:>11} " + " ".join(f"{v:>5}" for v in row) + f"  {acc:8.2%}")
        return "\n".join(lines)


def counter_confusion(
    n_per_class: int = 1000, seed: int = 0, blur: float = 0.0, noise: float = 0.0, size: int = 64
) -> FingerConfusion:
    """The counter against the truth: n_per_class hands with each of 3-7 fingers (seeds seed
    + 3 ... seed + 7), drawn with `blur` and `noise` as render_hands does, read by
    count_fingers."""
    check_positive_int("n_per_class", n_per_class)
    check_seed(seed)
    check_int_at_least("size", size, 32, "pixels")
    check_non_negative("blur", blur)
    check_non_negative("noise", noise)
    counts = np.zeros((len(N_CLASSES), len(READ_AS)), dtype=np.int64)
    for i, k in enumerate(N_CLASSES):
        data = render_hands(n_per_class, seed + k, size=size, n_fingers=k, blur=blur, noise=noise)
        read = count_fingers(data.images)
        column = np.where(read < 0, len(READ_AS) - 1, np.clip(read, 2, 8) - 2)
        counts[i] = np.bincount(column, minlength=len(READ_AS))
    return FingerConfusion(counts)


FINGER_CLASSES = ("five", "six", "four", "other", "unreadable")


def finger_rates(fingers: np.ndarray | torch.Tensor) -> dict[str, Rate]:
    """The share of hands read as five, six and four fingers, any other number, and
    unreadable (counts -1), each a Rate with its 95% Wilson interval; and "not five": the
    readable hands with another number than five, among the readable ones."""
    fingers = np.asarray(fingers)
    if fingers.ndim != 1 or len(fingers) == 0:
        raise ValueError(f"fingers must be a non-empty 1D array of finger counts, got shape {fingers.shape}")
    masks = {"five": fingers == 5, "six": fingers == 6, "four": fingers == 4, "unreadable": fingers == -1}
    masks["other"] = ~(masks["five"] | masks["six"] | masks["four"] | masks["unreadable"])
    out = {k: rate(torch.from_numpy(masks[k])) for k in FINGER_CLASSES}
    readable = fingers[fingers >= 0]
    if len(readable):
        out["not five"] = rate(torch.from_numpy(readable != 5))
    return out
