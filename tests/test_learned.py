import pytest
import torch

from mi_lib import (
    ToyMLP,
    exact_eps_fn,
    learned_eps,
    learned_score,
    learned_x0_hat,
    linear_schedule,
    mixture_preset,
    model_eps_fn,
    sample_bank,
    sample_with_hal,
    x0_hat_from_eps,
)


def test_learned_score_and_x0_hat_follow_from_eps():
    torch.manual_seed(0)
    model, s = ToyMLP(dim=1, width=32), linear_schedule(100)
    x = torch.linspace(0, 4, 11)[:, None]
    eps = learned_eps(model, x, 7, s)
    torch.testing.assert_close(eps, model(x, torch.tensor(7)).detach())
    torch.testing.assert_close(learned_score(model, x, 7, s), -eps / (1 - s.alpha_bar[7]).sqrt().float())
    torch.testing.assert_close(learned_x0_hat(model, x, 7, s), x0_hat_from_eps(x, 7, eps, s))
    with pytest.raises(ValueError, match=r"t must be an integer step in \[0, 99\]"):
        learned_score(model, x, 100, s)


def test_sample_bank_chunks_can_be_redrawn_alone():
    mix, s = mixture_preset("1d_three"), linear_schedule(20)
    eps_fn = exact_eps_fn(mix, s)
    bank = sample_bank(eps_fn, 7, 1, s, seed=3, chunk=3, progress=False)
    assert bank.shape == (7, 1)
    again = sample_bank(eps_fn, 7, 1, s, seed=3, chunk=3, progress=False)
    torch.testing.assert_close(bank, again, rtol=0, atol=0)
    tail = sample_bank(eps_fn, 4, 1, s, seed=3, chunk=3, progress=False, first_chunk=1)
    torch.testing.assert_close(bank[3:], tail, rtol=0, atol=0)
    assert not torch.equal(bank, sample_bank(eps_fn, 7, 1, s, seed=4, chunk=3, progress=False))


def test_sample_with_hal_gives_the_bank_and_hal():
    torch.manual_seed(0)
    model, s = ToyMLP(dim=2, width=16, n_blocks=1), linear_schedule(15)
    eps_fn = model_eps_fn(model)
    bank = sample_bank(eps_fn, 5, 2, s, seed=0, chunk=2, progress=False)
    x, hal = sample_with_hal(eps_fn, 5, 2, s, seed=0, window=(0, 4), chunk=2, progress=False)
    torch.testing.assert_close(x, bank, rtol=0, atol=0)
    assert hal.shape == (5,) and bool((hal >= 0).all())


def test_sample_with_hal_rejects_a_window_outside_the_schedule_before_sampling():
    from mi_lib import linear_schedule, sample_with_hal

    def never(x, t):
        raise AssertionError("sampled although the window is bad")

    s = linear_schedule(10)
    bad = (((0, 10), "t_hi must be an integer step in \\[0, 9\\]"), ((5, 2), "t_lo must be at most t_hi"))
    for window, match in bad:
        with pytest.raises(ValueError, match=match):
            sample_with_hal(never, 3, 1, s, seed=0, window=window, progress=False)
