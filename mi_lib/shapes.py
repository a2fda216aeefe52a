"""Simple Shapes (paper Sec. 4.2, Fig. 1): 64 x 64 binary images with at most one triangle
(left column), one square (middle) and one pentagon (right), and a counter that reads any
such image, real or generated.

The 63 x 63 canvas sits in the top-left corner of the image and is cut into three columns of
21 x 63 pixels. Each shape is present with probability 1/2, independently, at a uniformly
random position where it fits inside its column; blank images are drawn again. Pixels are
+1 on a shape and -1 elsewhere. Sizes follow the authors' generator: a square of 8 x 8
pixels, a triangle of side 11 pointing down, a pentagon of circumradius 5.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from mi_lib.checks import check_positive_int

SIZE, CANVAS, COLUMN = 64, 63, 21
KINDS = ("triangle", "square", "pentagon")  # column 0, 1, 2


def _polygon_mask(vertices: np.ndarray, size: int) -> np.ndarray:
    """Pixels (row, col) whose centre lies inside the convex polygon or within 3/8 pixel of
    its edge. The margin stands in for the outline a rasteriser such as OpenCV's fillPoly
    draws, and gives the pixel counts of the authors' shapes (paper: ~65 and ~70 pixels)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    inside = np.ones(len(pts), dtype=bool)
    near = np.zeros(len(pts), dtype=bool)
    n = len(vertices)
    for i in range(n):
        a, b = vertices[i], vertices[(i + 1) % n]
        edge = b - a
        cross = edge[0] * (pts[:, 1] - a[1]) - edge[1] * (pts[:, 0] - a[0])
        inside &= cross >= 0
        u = np.clip(((pts - a) @ edge) / (edge @ edge), 0, 1)
        near |= np.linalg.norm(pts - (a + u[:, None] * edge), axis=1) <= 0.375
    return (inside | near).reshape(size, size)


def _orient(vertices: np.ndarray) -> np.ndarray:
    """Counter-clockwise in image coordinates (x right, y down), as _polygon_mask expects."""
    x, y = vertices[:, 0], vertices[:, 1]
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return vertices if area > 0 else vertices[::-1]


def _stamp(kind: str) -> np.ndarray:
    """The shape's pixels as a tight boolean array."""
    if kind == "square":
        return np.ones((8, 8), dtype=bool)
    if kind == "triangle":  # side 11, pointing down
        h = 11 * math.sqrt(3) / 2
        v = np.array([[1.0, 1.0], [12.0, 1.0], [6.5, 1.0 + h]])
    else:  # pentagon, circumradius 5, pointing up
        ang = np.deg2rad(-90 + 72 * np.arange(5))
        v = np.stack([7 + 5 * np.cos(ang), 7 + 5 * np.sin(ang)], axis=1)
    m = _polygon_mask(_orient(v), 16)
    rows, cols = np.nonzero(m)
    return m[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


STAMPS = {kind: _stamp(kind) for kind in KINDS}


class ShapesData(NamedTuple):
    """images (N, 1, 64, 64) in {-1, 1}; present (N, 3) bool per column; top_left (N, 3, 2)
    the (row, col) of each present shape's corner, -1 where absent."""

    images: torch.Tensor
    present: torch.Tensor
    top_left: torch.Tensor


def draw(present: np.ndarray, top_left: np.ndarray) -> np.ndarray:
    """One 64 x 64 image in {-1, 1} with the given shapes at the given corners."""
    img = -np.ones((SIZE, SIZE), dtype=np.float32)
    for k, kind in enumerate(KINDS):
        if present[k]:
            r, c = top_left[k]
            h, w = STAMPS[kind].shape
            img[r : r + h, c : c + w][STAMPS[kind]] = 1.0
    return img


def simple_shapes(n: int = 5000, seed: int = 0) -> ShapesData:
    """The Simple Shapes data set, seeded (paper Sec. 4.2; 5,000 images in the paper)."""
    check_positive_int("n", n)
    rng = np.random.default_rng(seed)
    present = np.zeros((n, 3), dtype=bool)
    top_left = -np.ones((n, 3, 2), dtype=np.int64)
    for i in range(n):
        while not present[i].any():  # blank images are dropped
            present[i] = rng.random(3) < 0.5
        for k, kind in enumerate(KINDS):
            if present[i, k]:
                h, w = STAMPS[kind].shape
                top_left[i, k] = rng.integers(0, CANVAS - h + 1), k * COLUMN + rng.integers(0, COLUMN - w + 1)
    images = np.stack([draw(p, t) for p, t in zip(present, top_left, strict=True)])
    return ShapesData(torch.from_numpy(images)[:, None], torch.from_numpy(present), torch.from_numpy(top_left))


def two_of_a_kind(n: int, kind: str, seed: int = 0) -> torch.Tensor:
    """n images (n, 1, 64, 64) that break the data's rule on purpose, to test a counter:
    drawn like the data with `kind` present, plus a second `kind` in the same column at a
    random position at least two pixels above or below the first (so they never touch)."""
    check_positive_int("n", n)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    k, rng = KINDS.index(kind), np.random.default_rng(seed)
    h, w = STAMPS[kind].shape
    base = simple_shapes(n, seed)
    out = []
    for present, top_left in zip(base.present.numpy(), base.top_left.numpy(), strict=True):
        present, top_left = present.copy(), top_left.copy()
        if not present[k]:
            present[k] = True
            top_left[k] = rng.integers(0, CANVAS - h + 1), k * COLUMN + rng.integers(0, COLUMN - w + 1)
        r1 = top_left[k, 0]
        rows = [r for r in range(CANVAS - h + 1) if abs(r - r1) >= h + 2]
        second = np.zeros((3, 2), dtype=np.int64)
        second[k] = rng.choice(rows), k * COLUMN + rng.integers(0, COLUMN - w + 1)
        out.append(np.maximum(draw(present, top_left), draw(np.eye(3, dtype=bool)[k], second)))
    return torch.from_numpy(np.stack(out))[:, None]


class Reading(NamedTuple):
    """What the counter read in one image: counts (3, 3) of each kind (columns of the array:
    triangle, square, pentagon) found in each column (rows), and the number of blobs that
    are no shape. label is 'hallucinated' (two or more shapes of one kind in that kind's
    column, the paper's hallucination), else 'in support' (one to three shapes, each kind at
    most once and in its own column: an image the data could hold), else 'unreadable' (a blob
    that is no shape, a shape read as another column's kind, or no shape at all: outside the
    data, but not by interpolation between its images)."""

    counts: np.ndarray
    unreadable: int
    label: str


def _features(blob: np.ndarray) -> tuple[int, int, int]:
    rows, cols = np.nonzero(blob)
    return int(blob.sum()), int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


PROTOTYPES = {kind: _features(STAMPS[kind]) for kind in KINDS}


def _fits(blob_features: tuple[int, int, int], kind: str, area_tol: float, box_tol: int) -> bool:
    (area, h, w), (a, ph, pw) = blob_features, PROTOTYPES[kind]
    return abs(area - a) <= area_tol * a and abs(h - ph) <= box_tol and abs(w - pw) <= box_tol


def _classify(blob: np.ndarray, expected: str | None = None, area_tol: float = 0.25, box_tol: int = 2) -> str | None:
    """The kind whose area and bounding box a blob matches: `expected` (the kind of the blob's
    column) if it fits, else the closest fit, else None."""
    area, h, w = _features(blob)
    if expected is not None and _fits((area, h, w), expected, area_tol, box_tol):
        return expected
    best, best_err = None, math.inf
    for kind, (a, ph, pw) in PROTOTYPES.items():
        if _fits((area, h, w), kind, area_tol, box_tol):
            err = abs(area - a) / a + (abs(h - ph) + abs(w - pw)) / 10
            if err < best_err:
                best, best_err = kind, err
    if best == "square" or best is None:
        return best
    # A triangle pointing down is wide at the top; a pentagon is widest below its top third.
    rows = np.nonzero(blob.any(1))[0]
    widths = blob[rows].sum(1)
    return "triangle" if widths[0] >= widths.max() - 1 else "pentagon"


def read_image(image: torch.Tensor | np.ndarray, threshold: float = 0.0) -> Reading:
    """Count the shapes in one 64 x 64 image with values in [-1, 1] (grey values allowed):
    pixels above threshold are ink; each 8-connected blob within a column is matched to a
    shape by its area, bounding box and outline, or called unreadable."""
    img = np.asarray(image, dtype=np.float32).reshape(-1, SIZE, SIZE)
    if img.shape[0] != 1:
        raise ValueError(f"image must be one 64 x 64 image, got shape {tuple(np.shape(image))}")
    ink = img[0] > threshold
    counts, unreadable = np.zeros((3, 3), dtype=np.int64), 0
    for column in range(3):  # shapes never cross a column border, but may touch one
        lo, hi = column * COLUMN, (column + 1) * COLUMN if column < 2 else SIZE
        blobs, _ = ndimage.label(ink[:, lo:hi], structure=np.ones((3, 3)))
        for i, sl in enumerate(ndimage.find_objects(blobs), start=1):
            blob = blobs[sl] == i
            if blob.sum() < 8:  # specks of noise are not shapes
                continue
            kind = _classify(blob, KINDS[column])
            if kind is None:
                unreadable += 1
            else:
                counts[column, KINDS.index(kind)] += 1
    if (np.diag(counts) >= 2).any():
        label = "hallucinated"
    elif unreadable or counts.sum() == 0 or counts.sum() != np.trace(counts):
        label = "unreadable"
    else:
        label = "in support"
    return Reading(counts, unreadable, label)
