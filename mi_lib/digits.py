"""Handwritten digits for the model-collapse chapter (paper Sec. 6 uses MNIST): the images,
a small classifier, and the Frechet distance between feature sets (the FID of Heusel et al.
2017 on that classifier's features, as the paper's LeNet-based FID).

Offline, the 8 x 8 digits that scikit-learn ships; MNIST through torchvision when a user is
online and asks for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mi_lib.checks import check_choice, check_positive, check_positive_int
from mi_lib.collapse_metrics import MetricsFn, class_coverage
from mi_lib.runtime import make_generator, progress_bar


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(feats_a: torch.Tensor | np.ndarray, feats_b: torch.Tensor | np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets (N, d) and (M, d)
    (the FID of Heusel et al. 2017 on whatever features are given)::

        |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)),

    with sample covariances (ddof 1). tr (S_a S_b)^(1/2) is computed as the trace of the
    square root of the symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2), which has the same
    eigenvalues: eigh and clipping at 0 keep it real and finite even when the covariances
    are singular (fewer samples than dimensions), where scipy.linalg.sqrtm(S_a S_b) can
    return complex values. Computed in float64; the result is clipped at 0."""
    a, b = (np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
            for f in (feats_a, feats_b))
    a, b = (f[:, None] if f.ndim == 1 else f for f in (a, b))
    for name, f in (("feats_a", a), ("feats_b", b)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must have shape (N, d) with N >= 2, got {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"{name} must be finite, got NaN or inf")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_b must have the dimension of feats_a ({a.shape[1]}), got {b.shape[1]}")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    ra = _psd_sqrt(sa)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(ra @ sb @ ra), 0, None)).sum()
    return float(max(0.0, mu @ mu + np.trace(sa) + np.trace(sb) - 2 * cross))


DIGIT_SOURCES = ("sklearn", "mnist")


def load_digits_images(
    source: str = "sklearn", root: str | Path | None = None, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Handwritten digits as (images (N, 1, H, W) float32 in [-1, 1], labels (N,) int64).

    'sklearn': the 1,797 8 x 8 digits that scikit-learn ships (UCI; grey levels 0..16), offline.
    'mnist': MNIST's 60,000 28 x 28 training digits through torchvision, from `root`; with
    download=True torchvision fetches them there when they are missing (needs the internet).
    The paper's collapse experiment uses MNIST (Sec. 6); the 8 x 8 digits stand in for it offline."""
    check_choice("source", source, DIGIT_SOURCES)
    if source == "sklearn":
        from sklearn.datasets import load_digits

        d = load_digits()
        images = torch.from_numpy(d.images.astype(np.float32) / 8.0 - 1.0)[:, None]
        return images, torch.from_numpy(d.target.astype(np.int64))
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise ValueError(
            "source='mnist' needs torchvision, which is not installed (pip install torchvision); "
            "source='sklearn' works offline"
        ) from None
    if root is None:
        raise ValueError("root must be a folder for MNIST (where it is, or where download=True puts it), got None")
    try:
        ds = MNIST(str(root), train=True, download=bool(download))
    except RuntimeError as err:
        raise ValueError(
            f"root must hold MNIST when download=False, got {str(root)!r} ({err}); pass download=True when "
            "online, or use source='sklearn'"
        ) from None
    images = ds.data.float().div(127.5).sub(1.0)[:, None]
    return images, ds.targets.long()


class DigitsNet(nn.Module):
    """A small CNN digit classifier whose penultimate layer gives the features for the
    Frechet distance (the paper uses LeNet's on MNIST). Two 3 x 3 convolutions (16, 32
    channels, ReLU), average-pooled to 4 x 4 whatever the image size (8 x 8 or 28 x 28), a
    Linear to `width` features (ReLU), and a Linear to 10 classes."""

    def __init__(self, width: int = 64, n_classes: int = 10) -> None:
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("n_classes", n_classes)
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.fc, self.head = nn.Linear(32 * 16, width), nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations (N, width) for images (N, 1, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.fc(F.adaptive_avg_pool2d(h, 4).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes)."""
        return self.head(self.features(x))


def train_digits_classifier(
    images: torch.Tensor, labels: torch.Tensor, steps: int = 500, seed: int = 0, batch_size: int = 128,
    lr: float = 2e-3, width: int = 64, progress: bool = True,
) -> DigitsNet:
    """A DigitsNet trained with Adam on (images, labels) for `steps` steps of `batch_size`
    random images; weights and batches seeded. Returned in eval mode."""
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        check_positive_int(name, value)
    check_positive("lr", lr)
    if images.ndim != 4 or images.shape[1] != 1 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"images must be (N, 1, H, W) with labels (N,), got {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    gen = make_generator(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitsNet(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in progress_bar(range(steps), desc="digits classifier", progress=progress):
        idx = torch.randint(0, len(images), (min(batch_size, len(images)),), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(images[idx]), labels[idx].long()).backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def digits_features(net: DigitsNet, images: torch.Tensor, batch: int = 4_096) -> torch.Tensor:
    """net.features on images in batches, as a float64 CPU tensor (N, width)."""
    check_positive_int("batch", batch)
    net.eval()
    return torch.cat([net.features(images[i : i + batch]).double().cpu() for i in range(0, len(images), batch)])


def digit_confidence(net: DigitsNet, images: torch.Tensor) -> torch.Tensor:
    """net's largest class probability for each image, (N, 1, H, W) or flattened (N, H * W)
    square images: near 1 for a digit that reads clearly as one class, lower for an ambiguous
    or malformed one (a per-sample quality score where no digit is labelled hallucinated)."""
    if images.ndim == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            raise ValueError(f"flattened images must be square, got {images.shape[1]} pixels each")
        images = images.reshape(-1, 1, side, side)
    net.eval()
    with torch.no_grad():
        return net(images.float()).softmax(dim=1).max(dim=1).values


def digits_metrics(net: DigitsNet, reference: torch.Tensor) -> MetricsFn:
    """A metrics_fn for digit images: 'fid' (frechet_distance between net's features of the
    samples and of the reference images, the real digits), 'classes_covered' and
    'class_evenness' (class_coverage of net's predictions)."""
    ref = digits_features(net, reference)

    def metrics_fn(images: torch.Tensor) -> dict:
        x = images.detach().cpu().float()
        with torch.no_grad():
            cov = class_coverage(net(x).argmax(1), net.head.out_features)
        return {"fid": frechet_distance(digits_features(net, x), ref), "classes_covered": cov.covered,
                "class_evenness": cov.evenness}

    return metrics_fn
