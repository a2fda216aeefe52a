"""mi_lib.fast computes ToyMLP's function: its values and gradients against the plain network."""

import pytest
import torch

from mi_lib import ToyMLP, fast, linear_schedule, make_generator, model_eps_fn
from mi_lib.training import eps_loss


def _spread_norms(model: ToyMLP) -> None:
    """Move every LayerNorm's scale and shift away from their initial 1 and 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)


@pytest.mark.parametrize("dim, shared", [(1, False), (2, False), (1, True)])
def test_fast_forward_equals_the_plain_network(dim, shared):
    """Values and gradients, for one t per row and one t for the batch, with every LayerNorm's
    scale and shift moved away from their initial 1 and 0."""
    torch.manual_seed(0)
    model = ToyMLP(dim=dim, shared_blocks=shared)
    _spread_norms(model)
    x = torch.cat([torch.randn(300, dim) * 3, torch.zeros(2, dim), torch.full((2, dim), 1e-4)])
    t = torch.randint(0, 1000, (len(x),))
    for tt in (t, torch.tensor(417)):
        torch.testing.assert_close(fast.forward(model, x, tt), model(x, tt), rtol=1e-5, atol=1e-6)
    grads = []
    for f in (lambda: fast.forward(model, x, t), lambda: model(x, t)):
        model.zero_grad()
        f().square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for quick, plain in zip(*grads, strict=True):
        torch.testing.assert_close(quick, plain, rtol=1e-4, atol=1e-5)


def test_fast_block_equals_the_temporal_block():
    torch.manual_seed(0)
    blk = ToyMLP(dim=2, width=64).blocks[0]
    h, temb = torch.randn(50, 64), torch.randn(50, 64)
    torch.testing.assert_close(fast.block(blk, h.clone(), blk.time(temb), None), blk(h, temb), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the skip added in place
        plain = blk(h, temb[:1].expand(50, -1))
        torch.testing.assert_close(fast.block(blk, h.clone(), blk.time(temb[:1]), None), plain)


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
        return fast.first_u(fast.first_layer(model), fast.first_s(model, x), torch.zeros(1, model.width))

    with torch.no_grad():
        blk.norm1.weight[3] = 0.0
        first = fast.first_layer(model)
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
        assert len(fast.first_layer(model).z) == 0
        torch.testing.assert_close(via_table(x), plain(x), rtol=1e-5, atol=1e-5)
    assert fast.first_layer(ToyMLP(dim=2)) is None


@pytest.mark.parametrize("dim", [1, 2])
def test_fast_loss_backward_gives_the_plain_gradient(dim):
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
    loss = fast.loss_backward(model, x0, s, t, eps, eps, chunk=200)
    assert loss == pytest.approx(float(plain.detach()), rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[n], rtol=1e-4, atol=1e-6, msg=n)


def test_backward_in_chunks_gives_the_mean_and_its_gradient():
    w = torch.tensor([2.0], requires_grad=True)
    y = torch.arange(7.0)
    loss = fast.backward_in_chunks(lambda sl: ((w - y[sl]) ** 2).mean(), 7, chunk=3)  # slices of 3, 3 and 1
    assert loss == pytest.approx(float(((2.0 - y) ** 2).mean()))
    assert float(w.grad) == pytest.approx(float((2 * (2.0 - y)).mean()))
    with pytest.raises(ValueError, match="chunk must be a positive integer, got 0"):
        fast.backward_in_chunks(lambda sl: w.sum(), 7, chunk=0)


@pytest.mark.parametrize("dim", [1, 2])
def test_sliced_eps_fn_equals_the_plain_network(dim):
    torch.manual_seed(0)
    model = ToyMLP(dim=dim, width=32)
    x = torch.randn(2_500, dim) * 3
    eps_fn = model_eps_fn(model, rows=300)
    for t in (17, 3):
        with torch.no_grad():
            plain = model(x, torch.tensor(t))
        torch.testing.assert_close(eps_fn(x, torch.tensor(t)), plain, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(eps_fn(x[:200], torch.tensor(t)), plain[:200], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        model_eps_fn(model, rows=0)


def test_eps_fn_follows_weight_changes():
    """The eps_fn reads the weights at each call: after an optimiser step, after
    load_state_dict and after a weight is replaced it gives the new network's values."""
    torch.manual_seed(0)
    model, other = ToyMLP(dim=1, width=32), ToyMLP(dim=1, width=32)
    x, t = torch.randn(400, 1) * 3, torch.tensor(9)
    eps_fn = model_eps_fn(model, rows=150)

    def fresh() -> torch.Tensor:
        with torch.no_grad():
            return model(x, t)

    torch.testing.assert_close(eps_fn(x, t), fresh(), rtol=1e-5, atol=1e-5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x, t).square().mean().backward()
    opt.step()
    torch.testing.assert_close(eps_fn(x, t), fresh(), rtol=1e-5, atol=1e-5)
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(eps_fn(x, t), fresh(), rtol=1e-5, atol=1e-5)
    model.blocks[0].norm1.bias = torch.nn.Parameter(torch.randn(32))
    torch.testing.assert_close(eps_fn(x, t), fresh(), rtol=1e-5, atol=1e-5)


def test_eps_fn_rejects_samples_of_another_dimension():
    """A 1D model sampled with dim=2 fails at once, naming the shapes, not inside the network."""
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1\) for a model of dim 1, got \(5, 2\)"):
        model_eps_fn(ToyMLP(dim=1, width=8))(torch.zeros(5, 2), torch.tensor(3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\) for a model of dim 2, got \(5, 1\)"):
        ToyMLP(dim=2, width=8)(torch.zeros(5, 1), torch.tensor(3))
