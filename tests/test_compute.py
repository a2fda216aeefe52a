"""mi_lib.compute: the path a GPU takes, checked on the CPU. It computes the fast path's eps,
and one reverse step with Hal costs few more operations than the plain network itself (each
operation is a kernel launch on a GPU)."""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mi_lib import ToyMLP, WindowVariance, compute, ddpm_sample, linear_schedule, make_generator, model_eps_fn
from mi_lib.artifacts.shapes import RECIPE
from mi_lib.cuda_graph import GraphedStep


def _aten_ops(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.name.startswith("aten::"))


def _models():
    torch.manual_seed(0)
    return [(ToyMLP(1), (2_000, 1)), (ToyMLP(2), (2_000, 2)), (RECIPE.eps_model(RECIPE.model()), (2, 1, 64, 64))]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["toy 1D", "toy 2D", "U-Net"])
def test_a_reverse_step_with_hal_costs_at_most_30_percent_more_ops_than_the_plain_network(index):
    model, shape = _models()[index]
    x, t = torch.randn(shape), torch.tensor(500)
    plain = _aten_ops(lambda: model(x, t))
    sampler = ddpm_sample(compute.device_eps_fn(model), shape, linear_schedule(1000), make_generator(0),
                          progress=False)
    acc = WindowVariance(0, 999)
    next(sampler)  # the first step draws x_T and moves the schedule's times

    def reverse_step_with_hal():
        step = next(sampler)
        acc.update(step.t, step.x0_hat)

    assert _aten_ops(reverse_step_with_hal) <= 1.3 * plain


@pytest.mark.parametrize("index", [0, 1, 2], ids=["toy 1D", "toy 2D", "U-Net"])
def test_the_device_path_computes_the_fast_paths_eps(index):
    model, shape = _models()[index]
    x = torch.randn(shape) * 2
    for t in (torch.tensor(3), torch.tensor(900)):
        torch.testing.assert_close(compute.device_eps_fn(model)(x, t), model_eps_fn(model)(x, t), rtol=1e-5,
                                   atol=1e-6)


def test_the_cpu_keeps_the_fast_path_and_unfused_adam():
    model = ToyMLP(1)
    assert compute.eps_fn(model).__qualname__.startswith("eps_fn.<locals>.toy")
    assert compute.eps_fn(model).__module__ == "mi_lib.fast"
    assert not compute.adam(model, 1e-3).defaults.get("fused")


def test_cuda_graphs_are_the_default_on_cuda_only_and_never_under_autocast():
    assert compute.use_graphs("cuda", None, None) and compute.use_graphs("cuda:1", None, None)
    assert not compute.use_graphs("cuda", None, "bfloat16") and not compute.use_graphs("cpu", None, None)
    assert not compute.use_graphs("cuda", False, None) and compute.use_graphs("cuda", True, "bfloat16")


def test_the_foreach_ema_is_the_parameter_by_parameter_one():
    torch.manual_seed(0)
    model, ema = ToyMLP(2), ToyMLP(2)
    by_param = [e.detach().clone().lerp_(p.detach(), 0.1) for e, p in zip(ema.parameters(), model.parameters(),
                                                                            strict=True)]
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 0.1)
    for a, b in zip(ema.parameters(), by_param, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("call, message", [
    (lambda: compute.eps_fn(ToyMLP(1), dtype="float16"), "autocast must be one of"),
    (lambda: compute.eps_fn(ToyMLP(1), rows=0), "rows must be a positive integer"),
    (lambda: compute.autocast("cpu", "fp8"), "autocast must be one of"),
    (lambda: compute.use_graphs("cpu", True, None), "graphs=True needs a model on a CUDA device, got cpu"),
    (lambda: compute.use_graphs("cpu", "yes", None), "graphs must be True, False or None, got 'yes'"),
    (lambda: GraphedStep(ToyMLP(1), compute.adam(ToyMLP(1), 1e-3), linear_schedule(10)),
     "model must be on a CUDA device to be captured, got cpu")])
def test_bad_arguments_name_themselves(call, message):
    with pytest.raises(ValueError, match=message):
        call()
