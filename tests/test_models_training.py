import os

import pytest
import torch

from mi_lib import ToyMLP, linear_schedule, load_checkpoint, make_generator, mixture_preset, train


def _spread_norms(model: ToyMLP) -> None:
    """Move every LayerNorm's scale and shift away from their initial 1 and 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)


@pytest.mark.parametrize("dim", [1, 2])
def test_fast_path_equals_plain_path(dim):
    """Time features once per t, the first block's table (1D) and the folded output
    LayerNorm give the plain network's values and gradients, with every LayerNorm's scale
    and shift moved away from their initial 1 and 0."""
    torch.manual_seed(0)
    model = ToyMLP(dim=dim)
    _spread_norms(model)
    x = torch.cat([torch.randn(300, dim) * 3, torch.zeros(2, dim), torch.full((2, dim), 1e-4)])
    t = torch.randint(0, 1000, (len(x),))
    torch.testing.assert_close(model(x, t), model.forward_per_sample(x, t), rtol=1e-5, atol=1e-6)
    t0 = torch.tensor(417)
    torch.testing.assert_close(model(x, t0), model.forward_per_sample(x, t0), rtol=1e-5, atol=1e-6)
    grads = []
    for f in (model.forward, model.forward_per_sample):
        model.zero_grad()
        f(x, t).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for fast, plain in zip(*grads, strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


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


def test_first_layer_table_equals_the_matrix_product():
    """The piecewise-linear table of the first block's fc1 (1D data) gives fc1(act(norm1(x w)))
    on both sides of every kink, at the kinks themselves, far out (s near its bound), with a
    LayerNorm scale of zero (a coordinate with no kink) and with a constant input weight (no
    kinks at all); there is no table for 2D data."""
    torch.manual_seed(1)
    model = ToyMLP(dim=1, width=64)
    _spread_norms(model)
    blk = model.blocks[0]

    def plain(x: torch.Tensor) -> torch.Tensor:
        return blk.fc1(blk.act(blk.norm1(model.inp(x))))

    def via_table(x: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros(1, model.width)
        return model._first_u(model.first_layer(), model._first_s(x), zero)

    with torch.no_grad():
        blk.norm1.weight[3] = 0.0
        first = model.first_layer()
        assert 0 < len(first.z) <= model.width and bool((first.z[1:] >= first.z[:-1]).all())
        assert first.A.shape == first.B.shape == (len(first.z) + 1, model.width)
        # x where s hits each kink: s = x / sqrt(x^2 v + eps) inverts to x = s sqrt(eps / (1 - s^2 v))
        v = (model.inp.weight[:, 0] - model.inp.weight[:, 0].mean()).pow(2).mean()
        z = first.z.double()
        at_kinks = (z * torch.sqrt(blk.norm1.eps / (1 - z * z * v))).float()[:, None]
        x = torch.cat([torch.linspace(-50, 50, 4001)[:, None], at_kinks, at_kinks * (1 + 1e-3), at_kinks * (1 - 1e-3),
                       torch.tensor([[0.0], [1e6], [-1e6]])])
        torch.testing.assert_close(via_table(x), plain(x), rtol=1e-5, atol=1e-5)
        model.inp.weight.fill_(0.5)  # exactly constant: w - mean w = 0
        assert len(model.first_layer().z) == 0
        torch.testing.assert_close(via_table(x), plain(x), rtol=1e-5, atol=1e-5)
    assert ToyMLP(dim=2).first_layer() is None


@pytest.mark.parametrize("dim", [1, 2])
def test_chunked_backward_with_shared_time_features_gives_the_plain_gradient(dim):
    from mi_lib.training import _backward_in_chunks, eps_loss

    torch.manual_seed(0)
    model, s = ToyMLP(dim=dim, width=32), linear_schedule(50)
    _spread_norms(model)
    g = make_generator(4)
    x0, eps = torch.randn(700, dim, generator=g), torch.randn(700, dim, generator=g)
    t = torch.randint(0, 50, (700,), generator=g)
    plain = eps_loss(model, x0, s, t, eps)
    plain.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    loss = _backward_in_chunks(model, x0, s, t, eps, chunk=200)
    assert loss == pytest.approx(float(plain.detach()), rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[n], rtol=1e-4, atol=1e-6, msg=n)
