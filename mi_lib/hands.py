"""Hands (paper Fig. 5, 20-23): a procedural stand-in for 11k Hands, with finger
poses in discrete modes, and a loader for the real data set where it is at hand.

A hand is a palm (a rounded box) with five digits, each a chain of three capsules (round-ended
segments) bent a little at the joints, drawn dark on a white background. Sizes are in palm
radii (the palm's half-width, R): a digit starts on the palm's edge and points through its
*slot*, the point at bearing phi and distance 2 R from the palm's centre; phi is the digit's
angle, in degrees from the hand's axis (the middle finger), positive toward the little finger.
The finger counter (mi_lib.fingers) reads a hand on circles of about that radius.

Modes (poses="gapped"). Seven slots, SLOTS = (-80, -52, -25, 0, 25, 50, 74) degrees, 25-28
degrees apart: the room a finger needs at 2 R to stay apart from the next one in a 64 x 64
image. The middle finger always sits at 0. On each side two of the three slots hold a digit:
the thumb at -52 ("in") or -80 ("out"), the index at -25 ("closed") or -52 ("spread"), the
ring at 25 or 50 and the little finger at 50 or 74, never two in one slot. That makes 3 x 3 =
9 whole-hand poses (POSES), each drawn with probability 1/9, every angle jittered by at most
JITTER = 2 degrees and every joint bent by at most 4. Each finger's angle thus takes one of
two values with an empty gap of more than 20 degrees between them, and neighbouring poses
differ in one finger: a model that interpolates between two of them draws that finger in both
slots (six fingers) or in neither (four). Every training image has five digits.

poses="continuous" fills the gaps: on each side the two digits move on the segment between
their two modes, (t, i) uniform on the triangle whose corners are the side's three gapped
states (so neighbours never share a slot; each angle's density is linear over its range, the
same range as the gapped modes), with the same jitter.

Pixels are in [-1, 1]: the background is white (1.0); the hand is a skin tone between -0.6 and
0.0 with mild shading (lighter along the middle of each part, a gradient across the hand).
Each hand is rotated by up to 12 degrees, scaled by 0.9-1.1, moved by up to 5% of the image,
and mirrored for a left hand (the thumb then on the right). No arm: the hand ends at the wrist.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from mi_lib.checks import check_choice, check_int_at_least, check_non_negative, check_positive_int, check_seed

SLOTS = (-80.0, -52.0, -25.0, 0.0, 25.0, 50.0, 74.0)  # degrees from the hand's axis
DIGITS = ("thumb", "index", "middle", "ring", "little")
# Slot index (into SLOTS) of each side's digits in that side's state 0, 1, 2. Thumb's side:
# thumb in + index closed, thumb out + index closed, thumb out + index spread. Little
# finger's side: both closed, little spread, both spread.
SIDE_STATES = {"thumb": (1, 0, 0), "index": (2, 2, 1), "little": (5, 6, 6), "ring": (4, 4, 5)}
POSES = tuple((left, right) for left in range(3) for right in range(3))  # (thumb side, little side)
# The slot each side's state leaves empty (thumb's side, little finger's side), and the digit
# an extra finger there is drawn as: the one that takes that slot in another pose.
EMPTY_SLOT = ((0, 1, 2), (6, 5, 4))
EXTRA_KIND = (("thumb", "index", "index"), ("little", "ring", "ring"))
# Per digit: its three segments' lengths and radii (palm radii) and its curl at each joint (degrees).
SEGMENTS = {
    "thumb": ((0.85, 0.75, 0.6), (0.26, 0.24, 0.22), -3.0),
    "index": ((0.85, 0.58, 0.45), (0.22, 0.2, 0.18), 0.0),
    "middle": ((0.95, 0.62, 0.48), (0.22, 0.2, 0.18), 0.0),
    "ring": ((0.88, 0.58, 0.45), (0.22, 0.2, 0.18), 0.0),
    "little": ((0.78, 0.5, 0.4), (0.2, 0.18, 0.16), 0.0),
}
PALM = (1.0, 1.05, 0.5)  # half-width (the palm radius R), half-height, corner radius
THUMB_BASE = (-0.72, -0.45)
RING_RADIUS = 2.0  # the circle of the slots, in palm radii
PALM_FRACTION = 0.135  # R in image widths, before the 0.9-1.1 scale
JITTER, ROTATION, SHIFT = 2.0, 12.0, 0.05  # degrees, degrees, image widths
POSE_KINDS = ("gapped", "continuous")
HANDS = ("both", "right", "left")
ASPECTS = ("dorsal right", "dorsal left", "palmar right", "palmar left")
# Uniforms per hand: sides 0-3, six-finger side 4, removal order 5-9, handedness 10, rotation
# 11, scale 12, shift 13-14, tone 15, finger length 16, angle jitter 17-23, bends 24-37.
N_UNIFORMS = 38


class HandsData(NamedTuple):
    """images (N, 1, S, S) in [-1, 1], white background; n_fingers (N,) digits drawn; pose (N,)
    index into POSES (-1 for continuous poses); angles (N, 7) degrees from the hand's axis of
    thumb, index, middle, ring, little and up to two extra fingers (NaN where none); left (N,)
    True for a left hand (the mirror image of a right one)."""

    images: torch.Tensor
    n_fingers: torch.Tensor
    pose: torch.Tensor
    angles: torch.Tensor
    left: torch.Tensor


def _side(u: np.ndarray, poses: str, outer: str, inner: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angles of one side's two digits (thumb and index, or little and ring), and the side's
    state 0-2 (-1 when continuous), from uniforms u (N, 2). Continuous: the outer digit has
    moved a fraction t = max(u) of the way from its state-0 mode to its state-2 mode, the inner
    one i = min(u) <= t: (t, i) is uniform on the triangle of the three gapped states."""
    slots = np.asarray(SLOTS)
    if poses == "gapped":
        state = np.minimum((u[:, 0] * 3).astype(np.int64), 2)
        return slots[np.asarray(SIDE_STATES[outer])[state]], slots[np.asarray(SIDE_STATES[inner])[state]], state
    t, i = u.max(1), u.min(1)
    (o0, o2), (i0, i2) = ((slots[SIDE_STATES[d][0]], slots[SIDE_STATES[d][2]]) for d in (outer, inner))
    return o0 + t * (o2 - o0), i0 + i * (i2 - i0), -np.ones(len(u), dtype=np.int64)


def _layout(u: np.ndarray, poses: str, n_fingers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which digits a hand has and where: angles (N, 7) in degrees before jitter (NaN where
    none), their kinds (N, 7) as indices into DIGITS (-1 where none), and the pose (N,).
    Columns: thumb, index, middle, ring, little, then up to two extra fingers. An extra finger
    fills a side's empty slot, the one its fingers take in another pose; a missing one is
    taken out at random."""
    n = len(u)
    angles, kinds = np.full((n, 7), np.nan), np.tile(np.array([0, 1, 2, 3, 4, -1, -1]), (n, 1))
    angles[:, 0], angles[:, 1], left = _side(u[:, 0:2], poses, "thumb", "index")
    angles[:, 4], angles[:, 3], right = _side(u[:, 2:4], poses, "little", "ring")
    angles[:, 2] = 0.0
    pose = np.where(left >= 0, 3 * left + right, -1)
    rows = np.arange(n)
    if n_fingers > 5:  # 6: one side chosen by u[:, 4]; 7: both sides
        sides = [0, 1] if n_fingers == 7 else [None]
        for col, side in zip((5, 6), sides, strict=False):
            s = (u[:, 4] >= 0.5).astype(np.int64) if side is None else np.full(n, side)
            state = np.where(s == 0, left, right)
            angles[:, col] = np.asarray(SLOTS)[np.asarray(EMPTY_SLOT)[s, state]]
            kinds[:, col] = np.vectorize(DIGITS.index)(np.asarray(EXTRA_KIND)[s, state])
    elif n_fingers < 5:  # take out 5 - n_fingers digits, the first of a random order
        gone = np.argsort(u[:, 5:10], axis=1)[:, : 5 - n_fingers]
        for g in gone.T:
            angles[rows, g], kinds[rows, g] = np.nan, -1
    return angles, kinds, pose


def _capsules(angles: np.ndarray, kinds: np.ndarray, bends: np.ndarray, stretch: np.ndarray) -> tuple[np.ndarray, ...]:
    """The digits as capsules in the hand's frame (palm radii, x toward the little finger, y
    along the middle finger): start a (N, 21, 2), end b (N, 21, 2), radius r (N, 21), three per
    digit column. A digit starts on the palm (the thumb low on its side) and its first segment
    points through its slot, the point at its angle and RING_RADIUS from the palm's centre;
    the next two turn by the digit's curl plus bends (N, 7, 2) degrees. Absent digits get
    radius -inf. stretch (N,) scales the lengths."""
    n = len(angles)
    known = kinds >= 0
    kind = np.where(known, kinds, 0)
    phi = np.deg2rad(np.nan_to_num(angles))
    lengths = np.array([SEGMENTS[d][0] for d in DIGITS])[kind] * stretch[:, None, None]  # (N, 7, 3)
    radii = np.array([SEGMENTS[d][1] for d in DIGITS])[kind]
    curl = np.array([SEGMENTS[d][2] for d in DIGITS])[kind]
    base = np.stack([0.8 * np.sin(phi), 0.92 * np.cos(phi)], axis=-1)
    base[kind == 0] = THUMB_BASE
    slot = RING_RADIUS * np.stack([np.sin(phi), np.cos(phi)], axis=-1)
    bearing = np.arctan2(slot[..., 0] - base[..., 0], slot[..., 1] - base[..., 1])  # from +y toward +x
    turns = np.concatenate([np.zeros((n, 7, 1)), np.deg2rad(curl[..., None] + bends)], axis=-1)
    bearing = bearing[..., None] + np.cumsum(turns, axis=-1)  # (N, 7, 3)
    steps = lengths[..., None] * np.stack([np.sin(bearing), np.cos(bearing)], axis=-1)  # (N, 7, 3, 2)
    ends = base[:, :, None] + np.cumsum(steps, axis=2)
    starts = np.concatenate([base[:, :, None], ends[:, :, :-1]], axis=2)
    radii = np.where(known[..., None], radii, -np.inf)
    return starts.reshape(n, 21, 2), ends.reshape(n, 21, 2), radii.reshape(n, 21)


def _palm_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Signed distance (palm radii, negative inside) from points (x, y) in the hand's frame to
    the palm, a box of PALM's half-sizes with rounded corners."""
    hw, hh, rc = PALM
    qx, qy = x.abs() - (hw - rc), y.abs() - (hh - rc)
    return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0) - rc


def _capsule_distance(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r: torch.Tensor):
    """Signed distance from points (x, y) (n, P) to the capsules a -> b (n, 2) of radius r (n,)."""
    ex, ey = b[:, 0, None] - a[:, 0, None], b[:, 1, None] - a[:, 1, None]
    px, py = x - a[:, 0, None], y - a[:, 1, None]
    h = ((px * ex + py * ey) / (ex * ex + ey * ey)).clamp(0, 1)
    return torch.hypot(px - h * ex, py - h * ey) - r[:, None]


class _Pose(NamedTuple):
    """Where each of n hands sits in the image, each field (n, 1): left (1.0 for a left hand),
    the rotation's cos and sin, scale (pixels per palm radius), centre column and row."""

    left: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    scale: torch.Tensor
    col: torch.Tensor
    row: torch.Tensor

    def to_hand(self, row: torch.Tensor, col: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel positions (row, col) -> the hand's frame (x, y), mirrored for a left hand."""
        dc, dr = torch.where(self.left > 0, size - col, col) - self.col, row - self.row
        return (self.cos * dc + self.sin * dr) / self.scale, (self.sin * dc - self.cos * dr) / self.scale

    def to_pixels(self, x: torch.Tensor, y: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The hand's frame (x, y) -> pixel positions (row, col): the inverse of to_hand."""
        col = self.col + self.scale * (self.cos * x + self.sin * y)
        return self.row + self.scale * (self.sin * x - self.cos * y), torch.where(self.left > 0, size - col, col)


def _window(pose: _Pose, a: torch.Tensor, b: torch.Tensor, r: torch.Tensor, size: int, w: int) -> torch.Tensor:
    """Flat indices (n, w * w) of the w x w pixels around each capsule a -> b (n, 2) of radius
    r (n,): all pixels within a pixel of it, when w spans the capsule plus 3 pixels."""
    rows, cols = pose.to_pixels(torch.stack([a[:, 0], b[:, 0]], 1), torch.stack([a[:, 1], b[:, 1]], 1), size)
    margin = r[:, None] * pose.scale + 1
    top = (rows.amin(1, keepdim=True) - margin).floor().clamp(0, size - w).long()
    left = (cols.amin(1, keepdim=True) - margin).floor().clamp(0, size - w).long()
    offset = torch.arange(w)
    return ((top + offset)[:, :, None] * size + (left + offset)[:, None, :]).reshape(len(a), -1)


def _draw(
    size: int, u: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray, chunk: int = 256, w: int | None = None
) -> torch.Tensor:
    """Render hands (N, S, S) in [-1, 1] from their capsules and per-hand uniforms u: each
    pixel centre is taken into the hand's frame (mirrored for a left hand), the hand's signed
    distance there (the least over the palm and the capsules) clamped over one pixel gives its
    coverage, and the covered part takes the hand's shaded tone. A capsule is measured only on
    the w x w pixels around it (by default just enough for the longest one): farther ones are
    not covered by it whatever it measures; w = size measures every capsule everywhere."""
    theta = np.deg2rad(ROTATION * (2 * u[:, 11] - 1))
    scale = PALM_FRACTION * size * (0.9 + 0.2 * u[:, 12])  # pixels per palm radius
    shift = SHIFT * size * (2 * u[:, 13:15] - 1)
    centre = size / 2 + shift + 0.95 * scale[:, None] * np.stack([-np.sin(theta), np.cos(theta)], axis=1)
    poses = torch.from_numpy(np.stack([u[:, 10] < 0.5, np.cos(theta), np.sin(theta), scale, *centre.T], 1)).float()
    tone = torch.from_numpy(-0.6 + 0.6 * u[:, 15:16]).float()
    a, b, r = (torch.from_numpy(v).float() for v in (a, b, r))
    longest = max(max(lengths) * 1.05 + 2 * max(radii) for lengths, radii, _ in SEGMENTS.values())
    w = min(size, math.ceil(longest * PALM_FRACTION * size * 1.1) + 3) if w is None else w
    row, col = (v.reshape(1, -1) + 0.5 for v in torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"))
    out = []
    for lo in range(0, len(u), chunk):
        pose = _Pose(*(v[:, None] for v in poses[lo : lo + chunk].T))
        x, y = pose.to_hand(row, col, size)
        sd = _palm_distance(x, y)
        for k in range(a.shape[1]):
            ak, bk, rk = a[lo : lo + chunk, k], b[lo : lo + chunk, k], r[lo : lo + chunk, k]
            if not torch.isfinite(rk).any():
                continue
            idx = _window(pose, ak, bk, rk.clamp(min=0), size, w)
            xw, yw = pose.to_hand(idx // size + 0.5, idx % size + 0.5, size)
            sd.scatter_reduce_(1, idx, _capsule_distance(xw, yw, ak, bk, rk), reduce="amin")
        cover = (0.5 - sd * pose.scale).clamp(0, 1)
        shade = tone[lo : lo + chunk] + 0.25 * ((-sd / 0.3).clamp(0, 1) - 0.5) + 0.02 * (x + y)
        out.append(1 - cover * (1 - shade.clamp(-1, 1)))
    return torch.cat(out).reshape(-1, size, size)


def _uniforms(n: int, seed: int, hands: str = "both") -> np.ndarray:
    """The random draws of n hands, (n, N_UNIFORMS) uniforms, row by row (so the first m rows
    do not depend on n); hands 'right' or 'left' fixes the handedness column."""
    u = np.random.default_rng([seed, 0]).random((n, N_UNIFORMS))
    if hands != "both":
        u[:, 10] = 0.25 if hands == "left" else 0.75
    return u


def _geometry(u: np.ndarray, poses: str, n_fingers: int):
    """Digit angles and kinds (N, 7), pose (N,) and capsules (a, b, r) (see _capsules) of the
    hands drawn as u."""
    angles, kinds, pose = _layout(u, poses, n_fingers)
    angles = angles + JITTER * (2 * u[:, 17:24] - 1)
    bends = 4.0 * (2 * u[:, 24:38] - 1).reshape(len(u), 7, 2)
    return angles, kinds, pose, _capsules(angles, kinds, bends, stretch=0.95 + 0.1 * u[:, 16])


def _hands(u: np.ndarray, size: int, poses: str = "gapped", n_fingers: int = 5) -> HandsData:
    angles, kinds, pose, (a, b, r) = _geometry(u, poses, n_fingers)
    return HandsData(_draw(size, u, a, b, r)[:, None], torch.from_numpy((kinds >= 0).sum(1)),
                     torch.from_numpy(pose), torch.from_numpy(angles).float(), torch.from_numpy(u[:, 10] < 0.5))


def render_hands(
    n: int, seed: int, size: int = 64, poses: str = "gapped", n_fingers: int = 5, blur: float = 0.0,
    noise: float = 0.0, hands: str = "both",
) -> HandsData:
    """n hands (see the module's docstring), seeded. n_fingers 3-7 draws that many digits
    (5 is the data; others are for testing a counter and need gapped poses); blur (pixels,
    the sigma of a Gaussian) and noise (the std of added Gaussian noise, then clamped to
    [-1, 1]) make them look like a sampler's output; hands picks 'right', 'left' or 'both'
    (half each). The first m hands of a call with n > m are those of the call with m."""
    check_positive_int("n", n)
    check_seed(seed)
    check_int_at_least("size", size, 32, "pixels")
    check_choice("poses", poses, POSE_KINDS)
    if isinstance(n_fingers, bool) or not isinstance(n_fingers, int):
        raise ValueError(f"n_fingers must be an integer from 3 to 7, got {n_fingers!r}")
    check_choice("n_fingers", n_fingers, range(3, 8))
    if n_fingers != 5 and poses != "gapped":
        raise ValueError(f"n_fingers other than 5 needs poses='gapped' (extra fingers fill its empty slots), "
                         f"got n_fingers={n_fingers} with poses={poses!r}")
    check_non_negative("blur", blur)
    check_non_negative("noise", noise)
    check_choice("hands", hands, HANDS)
    data = _hands(_uniforms(n, seed, hands), size, poses, n_fingers)
    images = data.images.numpy()
    if blur > 0:
        images = ndimage.gaussian_filter(images, sigma=(0, 0, blur, blur), mode="nearest")
    if noise > 0:
        images = images + noise * np.random.default_rng([seed, 1]).standard_normal(images.shape, dtype=np.float32)
    return data._replace(images=torch.from_numpy(np.clip(images, -1, 1, dtype=np.float32)))


def pose_pairs(n: int, seed: int, size: int = 64) -> tuple[HandsData, HandsData]:
    """n pairs of training hands (first, second) that differ in one finger only: all draws the
    same but one side's state, one step apart (the thumb, index, ring or little finger in one
    mode in `first` and in its other mode in `second`). Their pixel average, or a model that
    interpolates between them, shows that finger in both places or in neither."""
    check_positive_int("n", n)
    check_seed(seed)
    check_int_at_least("size", size, 32, "pixels")
    u, rng = _uniforms(n, seed), np.random.default_rng([seed, 2])
    column, step = 2 * rng.integers(0, 2, n), rng.integers(0, 2, n)  # side: column 0 or 2 of u
    first, second, rows = u.copy(), u.copy(), np.arange(n)
    first[rows, column], second[rows, column] = (step + 0.5) / 3, (step + 1.5) / 3
    return _hands(first, size), _hands(second, size)


def hands_dataset(n: int = 5000, seed: int = 0, size: int = 64, poses: str = "gapped") -> HandsData:
    """The training set of the hands chapter: n five-fingered hands (the paper trains on 5,000
    images of 11k Hands at 128 x 128; the book's quick scale uses 64 x 64)."""
    return render_hands(n, seed, size=size, poses=poses)


def _check_11k_layout(root: Path, aspect: str) -> list[Path]:
    """The image files of `aspect` listed in root/HandInfo.csv, in its order, all checked to
    exist in root/Hands; a ValueError naming the problem otherwise."""
    if not root.is_dir():
        raise ValueError(f"root must be the 11k Hands folder (HandInfo.csv and Hands/), got {str(root)!r}: "
                         "not a folder")
    info, folder = root / "HandInfo.csv", root / "Hands"
    if not info.is_file():
        raise ValueError(f"root {str(root)!r} has no HandInfo.csv")
    if not folder.is_dir():
        raise ValueError(f"root {str(root)!r} has no Hands folder of images")
    with info.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("aspectOfHand", "imageName") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"HandInfo.csv in {str(root)!r} lacks the column(s) {missing}, "
                             f"has {reader.fieldnames or []}")
        names = [(row["imageName"] or "").strip() for row in reader if (row["aspectOfHand"] or "").strip() == aspect]
    if not names:
        raise ValueError(f"HandInfo.csv in {str(root)!r} lists no image with aspectOfHand {aspect!r}")
    paths = [folder / name for name in names]
    absent = [p.name for p in paths if not p.is_file()]
    if absent:
        raise ValueError(f"{len(absent)} image(s) listed in HandInfo.csv are not in {str(folder)!r}, "
                         f"e.g. {absent[:3]}")
    return paths


def load_11k_hands(
    root: str | Path, aspect: str = "dorsal right", size: int = 64, n: int | None = None
) -> torch.Tensor:
    """The real 11k Hands images (Afifi 2019), for those who have them: root holds HandInfo.csv
    (columns id, age, gender, skinColor, accessories, nailPolish, aspectOfHand, imageName,
    irregularities) and the Hands folder of JPGs. Keeps the images of one aspect ('dorsal
    right', 'dorsal left', 'palmar right' or 'palmar left'), the first n of them in the CSV's
    order (all when n is None), in greyscale, resized to size x size without keeping the
    aspect ratio (as the paper's 128 x 128), as (N, 1, S, S) in [-1, 1] with the white
    background at 1. Everything is checked before any image is read; nothing is written."""
    check_choice("aspect", aspect, ASPECTS)
    check_positive_int("size", size)
    if n is not None:
        check_positive_int("n", n)
    paths = _check_11k_layout(Path(root), aspect)[:n]
    images = []
    for path in paths:
        with Image.open(path) as im:
            grey = im.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        images.append(np.asarray(grey, dtype=np.float32) / 127.5 - 1)
    return torch.from_numpy(np.stack(images))[:, None]
