"""mi_lib on a CUDA device against the CPU: equal to float rounding where the arithmetic is the
same (a network's eps, a reverse step, a training step's loss and gradients, Hal), in
distribution where the random streams differ (CUDA's generator is not the CPU's), and no step
of sampling or training waits for the device. Skipped without CUDA: `pytest -m cuda` (the GPU
job, benchmarks/gpu_job.py, runs it)."""

import copy
import math

import pytest
import torch
from scipy import stats

from mi_lib import (
    ToyMLP,
    WindowVariance,
    compute,
    ddpm_sample,
    linear_schedule,
    make_generator,
    mixture_preset,
    model_eps_fn,
    reverse_step,
    sample_with_hal,
)
from mi_lib.artifacts import load_artifact
from mi_lib.artifacts.shapes import RECIPE
from mi_lib.detection import auroc
from mi_lib.prediction import training_target
from mi_lib.training import batches, draw_t_eps, mean_last, train

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_float32():
    """No TF32 in matrix products or convolutions, so that the GPU's float32 is the CPU's."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _toy():
    return load_artifact("1d_three")["model"]


def _unet():
    return RECIPE.eps_model(RECIPE.model()).eval()


@pytest.mark.parametrize("make", [_toy, _unet], ids=["toy", "unet"])
def test_eps_on_cuda_equals_the_cpu(make):
    model = make()
    shape = (4096, 1) if make is _toy else (16, 1, 64, 64)
    x = torch.randn(shape, generator=make_generator(0)) * 1.5
    for t in (0, 14, 500, 999):
        cpu = model_eps_fn(model)(x, torch.tensor(t))
        gpu = model_eps_fn(copy.deepcopy(model).to(CUDA))(x.to(CUDA), torch.tensor(t, device=CUDA)).cpu()
        torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=2e-5)


def test_reverse_step_on_cuda_equals_the_cpu():
    sched, g = linear_schedule(1000), make_generator(0)
    x, eps, z = (torch.randn(1000, 2, generator=g) for _ in range(3))
    for t in (999, 10, 0):
        cpu = reverse_step(x, t, eps, sched, 0.3, z)
        gpu = reverse_step(x.to(CUDA), t, eps.to(CUDA), sched, 0.3, z.to(CUDA))
        for a, b in zip(cpu, gpu, strict=True):
            torch.testing.assert_close(b.cpu(), a, rtol=1e-6, atol=1e-6)


def test_hal_on_cuda_equals_the_cpu():
    g = make_generator(0)
    steps = [torch.randn(500, 3, generator=g) for _ in range(12)]
    cpu, gpu = WindowVariance(2, 9), WindowVariance(2, 9)
    for t, x in enumerate(steps):
        cpu.update(t, x)
        gpu.update(t, x.to(CUDA))
    torch.testing.assert_close(gpu.hal().cpu(), cpu.hal(), rtol=1e-12, atol=1e-12)


def test_sampler_on_cuda_matches_the_cpu_bank_in_distribution():
    """200,000 draws with Hal on the GPU against the shipped CPU bank of the same model: the
    same distribution (two-sample KS), the same hallucination rate (two-proportion z), and Hal
    still separates the hallucinations."""
    art = load_artifact("1d_three")
    model, cpu = art["model"], art["samples"]
    mix = mixture_preset("1d_three")
    x, hal = sample_with_hal(model_eps_fn(model.to(CUDA)), 200_000, 1, linear_schedule(1000), 5, (0, 14),
                             chunk=200_000, device=CUDA, progress=False)
    assert stats.ks_2samp(x[:, 0].numpy(), cpu[:, 0].numpy()).pvalue > 1e-3
    a, b = mix.hallucinated(x).double(), mix.hallucinated(cpu).double()
    p = (a.sum() + b.sum()) / (len(a) + len(b))
    z = (a.mean() - b.mean()) / math.sqrt(p * (1 - p) * (1 / len(a) + 1 / len(b)))
    assert abs(float(z)) < 4
    assert auroc(hal, mix.hallucinated(x)) > 0.9


def _step_once(model, ema, opt, data, sched, step, prediction="eps"):
    batch = next(data)
    t, eps = draw_t_eps(batch, sched.T, 0, step)
    target = training_target(prediction, batch, t, sched, eps)
    opt.zero_grad(set_to_none=True)
    loss = compute.loss_backward(model, batch, sched, t, eps, target, len(batch))
    opt.step()
    if ema is not None:
        compute.ema_update(ema, model, 0.999)
    return loss


@pytest.mark.parametrize("make", [_toy, _unet], ids=["toy", "unet"])
def test_a_training_step_on_cuda_equals_the_cpu(make):
    """Loss and gradients of one batch (same x0, t, eps) on both devices."""
    net = make() if make is _toy else RECIPE.model()
    x0 = mixture_preset("1d_three").sample(2_000, make_generator(0)) if make is _toy else RECIPE.data()[:32]
    sched, g = linear_schedule(1000), make_generator(1)
    t = torch.randint(0, 1000, (len(x0),), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    grads, losses = [], []
    for device in ("cpu", CUDA):
        model = copy.deepcopy(net).to(device).train()
        model.zero_grad()
        args = [v.to(device) for v in (x0, t, eps)]
        losses.append(float(compute.loss_backward(model, args[0], sched.to(device), args[1], args[2], args[2],
                                                  2_500)))
        grads.append([p.grad.cpu() for p in model.parameters()])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


def test_training_on_cuda_matches_the_cpu_in_distribution():
    """300 steps of batch 2,000 from the same start: the final losses agree within 5%."""
    x0 = mixture_preset("1d_three").sample(20_000, make_generator(0))
    finals = []
    for device in ("cpu", CUDA):
        torch.manual_seed(0)
        model = ToyMLP(1).to(device)
        steps = list(train(model, x0, linear_schedule(1000), 300, 2_000, progress=False))
        assert [s.step for s in steps] == list(range(1, 301))  # every step yielded, in order
        losses = [s.loss for s in steps]
        finals.append(mean_last(losses, 100))
    assert finals[1] == pytest.approx(finals[0], rel=0.05)


def test_no_sampling_or_training_step_waits_for_the_device():
    sched = linear_schedule(1000)
    for model, shape in ((_toy(), (10_000, 1)), (_unet(), (64, 1, 64, 64))):
        model = model.to(CUDA)
        sampler = ddpm_sample(model_eps_fn(model), shape, sched, make_generator(0, CUDA), progress=False)
        acc = WindowVariance(990, 999)
        next(sampler)  # the first step moves the schedule's times to the device
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(4):
                step = next(sampler)
                acc.update(step.t, step.x0_hat)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    for net, x0, prediction in ((_toy(), mixture_preset("1d_three").sample(5_000, make_generator(0)), "eps"),
                                (RECIPE.model(), RECIPE.data()[:320], "v")):
        model, ema = net.to(CUDA).train(), copy.deepcopy(net).to(CUDA)
        data, opt, dsched = batches(x0.to(CUDA), len(x0) // 5, 0), compute.adam(model, 1e-3), sched.to(CUDA)
        _step_once(model, ema, opt, data, dsched, 0, prediction)  # handles, kernels, the optimiser's state
        torch.cuda.set_sync_debug_mode("error")
        try:
            for step in range(1, 8):  # past an epoch's end (5 steps): a new shuffle
                _step_once(model, ema, opt, data, dsched, step, prediction)
        finally:
            torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("make", [_toy, _unet], ids=["toy", "unet"])
def test_graphed_training_takes_the_eager_steps(make):
    """train() with its step replayed as a CUDA graph, against the eager step: the same losses
    and weights (model and EMA) after 14 steps, across two epochs' smaller last batches."""
    toy = make is _toy
    net = make() if toy else RECIPE.model()
    x0 = mixture_preset("1d_three").sample(2_600, make_generator(0)) if toy else RECIPE.data()[:200]
    batch = 500 if toy else 48  # six batches an epoch, the last of 100 rows; five, the last of 8
    runs = []
    for graphs in (False, True):
        model, ema = copy.deepcopy(net).to(CUDA).train(), copy.deepcopy(net).to(CUDA)
        steps = train(model, x0, linear_schedule(1000), 14, batch, progress=False, ema=ema, graphs=graphs,
                      prediction="eps" if toy else "v")
        runs.append(([s.loss for s in steps], model, ema))
    (eager, m0, e0), (graphed, m1, e1) = runs
    assert graphed == pytest.approx(eager, rel=1e-4)
    for a, b in zip([*m0.parameters(), *e0.parameters()], [*m1.parameters(), *e1.parameters()], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_a_graphed_step_waits_for_nothing():
    from mi_lib.cuda_graph import WARMUP, GraphedStep

    net, x0, sched = RECIPE.model(), RECIPE.data()[:200], linear_schedule(1000).to(CUDA)
    model, ema = net.to(CUDA).train(), copy.deepcopy(net).to(CUDA)
    opt = compute.adam(model, 1e-3, capturable=True)
    step_fn, data = GraphedStep(model, opt, sched, ema), batches(x0.to(CUDA), 48, 0)

    def once(step):
        batch = next(data)
        t, eps = draw_t_eps(batch, sched.T, 0, step)
        return step_fn(batch, t, eps, training_target("v", batch, t, sched, eps))

    for step in range(WARMUP + 1):  # the warm-up and the capture
        once(step)
    assert step_fn.graph is not None
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [once(step) for step in range(WARMUP + 1, WARMUP + 8)]  # an epoch's end: 8 rows, eager
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(torch.stack(losses)).all()


def test_an_image_build_on_cuda_ends_in_a_loadable_artifact(tmp_path):
    from mi_lib.artifacts.hands import load_hands
    from mi_lib.artifacts.image_banks import image_model
    from mi_lib.artifacts.image_build import build_image, with_fields

    rec = with_fields(image_model("hands_gapped").recipe, {"steps": 150, "n_samples": 16, "sample_chunk": 8,
                                                            "sample_steps": 20, "n_data": 128, "base": 8,
                                                            "batch_size": 16})
    manifest = build_image("hands_gapped", tmp_path / "out", tmp_path / "work", rec, "cuda", snapshots=(50, 100),
                           save_every=50, progress=False)
    assert manifest["budget"]["steps"] == 150 and manifest["built_with"]["device"] == "cuda"
    assert manifest["built_with"]["cuda_graph"] is True
    assert [s["step"] for s in manifest["metrics"]["snapshots"]] == [50, 100, 150]
    loaded = load_hands("hands_gapped", tmp_path / "out")
    assert loaded["images"].shape == (16, 1, 64, 64) and torch.isfinite(loaded["hal"]).all()
    # The weights are written from the CPU: a machine without CUDA loads them with no map_location.
    state = torch.load(tmp_path / "out" / "hands_gapped.pt", weights_only=True)
    assert all(v.device.type == "cpu" for v in state["model"].values())
