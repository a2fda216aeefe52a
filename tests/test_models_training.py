import os

import pytest
import torch

from mi_lib import ToyMLP, linear_schedule, load_checkpoint, make_generator, mixture_preset, train


def test_shared_blocks_reproduce_the_authors_weight_sharing():
    shared, separate = ToyMLP(dim=1, shared_blocks=True), ToyMLP(dim=1)
    assert shared.blocks[0] is shared.blocks[2]
    block = sum(p.numel() for p in separate.blocks[0].parameters())
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(separate) - n(shared) == 2 * block


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    data = mixture_preset("1d_three").sample(2_000, make_generator(0))
    model = ToyMLP(dim=1, width=64)
    losses = [s.loss for s in train(model, data, linear_schedule(100), steps=150, batch_size=500, progress=False)]
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20


def test_resumed_training_equals_uninterrupted(tmp_path):
    data = mixture_preset("1d_three").sample(1_000, make_generator(0))
    s = linear_schedule(100)

    def fresh():
        torch.manual_seed(1)
        return ToyMLP(dim=1, width=32, n_blocks=2)

    straight = fresh()
    list(train(straight, data, s, steps=12, batch_size=300, seed=5, progress=False))
    ckpt = tmp_path / "run.pt"
    first = fresh()
    list(train(first, data, s, steps=7, batch_size=300, seed=5, checkpoint=ckpt, save_every=7, progress=False))
    resumed = fresh()  # a new process would start from new weights: the checkpoint restores them
    run = train(resumed, data, s, steps=12, batch_size=300, seed=5, checkpoint=ckpt, progress=False)
    steps = [st.step for st in run]
    assert steps == [8, 9, 10, 11, 12]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert load_checkpoint(ckpt)["step"] == 12
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert ckpt.stat().st_mode & 0o777 == 0o666 & ~umask  # the mode of any file the user writes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"lr": 0.0}, "lr must be positive"),
    ],
)
def test_bad_training_input(kwargs, match):
    args = {"steps": 5, "batch_size": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        next(train(ToyMLP(dim=1), torch.zeros(20, 1), linear_schedule(10), **args))


def test_bad_model_input():
    with pytest.raises(ValueError, match="width must be a positive integer"):
        ToyMLP(dim=1, width=0)
    with pytest.raises(ValueError, match=r"t must be 0-dim or have shape \(4,\)"):
        ToyMLP(dim=1)(torch.zeros(4, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="path must be an existing checkpoint file"):
        load_checkpoint("/nonexistent/x.pt")


def test_training_in_chunks_gives_the_same_steps():
    data = mixture_preset("1d_three").sample(900, make_generator(0))
    s = linear_schedule(100)
    runs = []
    for chunk in (900, 250):
        torch.manual_seed(3)
        model = ToyMLP(dim=1, width=32, n_blocks=2)
        losses = [st.loss for st in train(model, data, s, steps=6, batch_size=900, seed=2, progress=False, chunk=chunk)]
        runs.append((losses, model.state_dict()))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-5)
    for a, b in zip(runs[0][1].values(), runs[1][1].values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        next(train(ToyMLP(dim=1), data, s, steps=1, batch_size=10, chunk=0))


def test_batches_visit_every_row_once_per_epoch_and_resume_in_place():
    from mi_lib.training import batches

    x0 = torch.arange(10.0)[:, None]
    run = batches(x0, 4, seed=3)
    first = [next(run) for _ in range(6)]  # two epochs of 4 + 4 + 2 rows
    assert [len(b) for b in first] == [4, 4, 2, 4, 4, 2]
    for epoch in (first[:3], first[3:]):
        assert sorted(torch.cat(epoch)[:, 0].tolist()) == list(range(10))
    assert not torch.equal(torch.cat(first[:3]), torch.cat(first[3:]))  # a fresh order each epoch
    later = batches(x0, 4, seed=3, start=4)
    assert torch.equal(next(later), first[4])


def test_draw_t_eps_is_a_function_of_seed_and_step():
    from mi_lib.training import draw_t_eps

    x0 = torch.zeros(500, 2)
    t, eps = draw_t_eps(x0, 50, seed=1, step=7)
    t2, eps2 = draw_t_eps(x0, 50, seed=1, step=7)
    assert torch.equal(t, t2) and torch.equal(eps, eps2) and eps.shape == x0.shape
    assert int(t.min()) >= 0 and int(t.max()) == 49
    assert not torch.equal(draw_t_eps(x0, 50, seed=1, step=8)[1], eps)


def test_ema_update_is_the_exponential_moving_average():
    from mi_lib.compute import ema_update

    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, model, decay=0.9)
    for e, b, p in zip(ema.parameters(), before, model.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * b + 0.1 * p.detach())


def test_training_with_ema_saves_and_resumes_it(tmp_path):
    data = mixture_preset("1d_three").sample(300, make_generator(0))
    s, ckpt = linear_schedule(20), tmp_path / "run.pt"

    def fresh():
        torch.manual_seed(2)
        model = ToyMLP(dim=1, width=16, n_blocks=1)
        ema = ToyMLP(dim=1, width=16, n_blocks=1)
        ema.load_state_dict(model.state_dict())
        return model, ema

    straight, straight_ema = fresh()
    list(train(straight, data, s, steps=6, batch_size=100, ema=straight_ema, ema_decay=0.5, progress=False))
    model, ema = fresh()
    list(train(model, data, s, steps=3, batch_size=100, ema=ema, ema_decay=0.5, checkpoint=ckpt, progress=False))
    model, ema = fresh()
    list(train(model, data, s, steps=6, batch_size=100, ema=ema, ema_decay=0.5, checkpoint=ckpt, progress=False))
    for a, b in zip(straight_ema.state_dict().values(), ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mean_last():
    from mi_lib.training import mean_last

    assert mean_last([5.0] * 10 + [1.0] * 100) == 1.0
    assert mean_last([1.0, 2.0, 3.0], k=2) == 2.5
    assert mean_last([4.0]) == 4.0
    with pytest.raises(ValueError, match="losses must hold at least one loss"):
        mean_last([])


@pytest.mark.parametrize(
    "x0, match",
    [
        (torch.full((20, 1), float("nan")), "x0 must be finite, got 20 non-finite entries"),
        (torch.zeros(20, 2), r"x0 must have shape \(N, 1\) for a model of dim 1, got \(20, 2\)"),
    ],
)
def test_training_rejects_bad_data_up_front(x0, match):
    with pytest.raises(ValueError, match=match):
        next(train(ToyMLP(dim=1, width=8), x0, linear_schedule(10), steps=2, batch_size=10, progress=False))


def test_logged_losses_keep_every_loss_and_the_seconds_across_invocations(tmp_path):
    import math
    from types import SimpleNamespace

    from mi_lib.checkpoints import logged_losses, read_losses

    log = tmp_path / "losses.pt"
    steps = [SimpleNamespace(step=i, loss=float(i)) for i in range(1, 8)]
    assert [s.step for s in logged_losses(steps[:5], log, total=7, every=2)] == [1, 2, 3, 4, 5]
    assert read_losses(log)[0] == [1.0, 2.0, 3.0, 4.0]  # saved at step 4; step 5 was lost
    torch.save({"losses": torch.tensor([1.0, 2.0, 3.0, 4.0]), "seconds": 100.0}, log)
    list(logged_losses(steps[4:], log, total=7, every=2))  # resumed from step 5
    losses, seconds = read_losses(log)
    assert losses == [float(i) for i in range(1, 8)] and seconds >= 100.0
    torch.save({"losses": torch.tensor(losses)}, log)  # a log from before seconds were kept
    list(logged_losses(steps[-1:], log, total=7))
    assert math.isnan(read_losses(log)[1])
