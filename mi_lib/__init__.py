"""mi_lib: the code behind the book *Mode Interpolation*.

A flat API: chapters write ``from mi_lib import ...``.
"""

from mi_lib import fast
from mi_lib.checkpoints import load_checkpoint, save_checkpoint
from mi_lib.detection import auroc, detection_rates, roc, threshold_for_kept, threshold_for_removed
from mi_lib.diffusion import (
    Step,
    ddim_sample,
    ddpm_sample,
    eps_from_x0,
    final,
    posterior_variance,
    q_posterior_mean_var,
    q_sample,
    reverse_step,
    reverse_variance,
    x0_hat_from_eps,
)
from mi_lib.fingers import FingerConfusion, FingerReading, count_fingers, counter_confusion, read_hand
from mi_lib.hal import WindowVariance, hal_after_the_fact, hal_from_trajectory, sample_with_hal, sample_with_window_hals
from mi_lib.hands import HandsData, hands_dataset, load_11k_hands, pose_pairs, render_hands
from mi_lib.learned import learned_eps, learned_score, learned_x0_hat, model_eps_fn, sample_bank
from mi_lib.metrics import (
    Rate,
    direction_rates,
    gap_rates,
    hallucination_rate,
    interpolation_direction,
    rate,
    wilson_interval,
)
from mi_lib.mixtures import PRESETS, GaussianMixture, exact_eps_fn, gaussian_mixture, mixture_preset
from mi_lib.models import TemporalBlock, ToyMLP, timestep_embedding
from mi_lib.runtime import SCALES, by_scale, chunk_generator, default_device, get_scale, make_generator
from mi_lib.schedules import Schedule, cosine_schedule, linear_schedule, make_schedule, respace, window_steps
from mi_lib.shapes import KINDS, Reading, ShapesData, read_image, simple_shapes
from mi_lib.training import TrainStep, eps_loss, train
from mi_lib.unet import UNet

__all__ = [
    "PRESETS", "SCALES", "fast", "GaussianMixture", "Schedule", "Step", "TemporalBlock", "ToyMLP", "TrainStep",
    "by_scale", "cosine_schedule", "ddim_sample", "ddpm_sample", "default_device", "eps_from_x0",
    "eps_loss", "exact_eps_fn", "final", "gaussian_mixture", "get_scale", "linear_schedule",
    "load_checkpoint", "make_generator", "make_schedule", "mixture_preset", "posterior_variance",
    "q_posterior_mean_var", "q_sample", "respace", "reverse_step", "reverse_variance",
    "save_checkpoint", "timestep_embedding", "train", "x0_hat_from_eps",
    # Simple Shapes data and counter
    "KINDS", "Reading", "ShapesData", "read_image", "simple_shapes",
    # learned scores and hallucination metrics (chapter 4)
    "Rate", "WindowVariance", "chunk_generator", "direction_rates", "gap_rates", "hal_from_trajectory",
    "hallucination_rate", "interpolation_direction", "learned_eps", "learned_score", "learned_x0_hat",
    "model_eps_fn", "rate", "sample_bank", "sample_with_hal", "wilson_interval",
    # images (chapter 5 on)
    "UNet", "window_steps",
    # detection with Hal (chapter 6)
    "auroc", "detection_rates", "hal_after_the_fact", "roc", "sample_with_window_hals", "threshold_for_kept",
    "threshold_for_removed",
    # hands data and finger counter (chapter 7)
    "FingerConfusion", "FingerReading", "HandsData", "count_fingers", "counter_confusion", "hands_dataset",
    "load_11k_hands", "pose_pairs", "read_hand", "render_hands",
]
