import copy

import pytest
import torch

from mi_lib import cosine_schedule, respace, train
from mi_lib.schedules import window_steps
from mi_lib.unet import UNet


def tiny() -> UNet:
    torch.manual_seed(0)
    return UNet(channels=1, base=8, mults=(1, 2), n_res=1, patch=4)


def test_unet_maps_images_to_images_and_exposes_its_bottleneck():
    model = tiny()
    x = torch.randn(3, 1, 64, 64)
    assert model(x, torch.tensor([1, 500, 999])).shape == x.shape
    assert model.features(x, torch.tensor(10)).shape == (3, 16, 8, 8)


def test_unet_rows_are_independent_and_a_shared_t_broadcasts():
    model = tiny().eval()
    x = torch.randn(4, 1, 64, 64)
    t = torch.full((4,), 123)
    with torch.no_grad():
        whole = model(x, t)
        torch.testing.assert_close(model(x, torch.tensor(123)), whole)
        torch.testing.assert_close(model(x[2:3], t[2:3]), whole[2:3], rtol=1e-4, atol=1e-5)


def test_every_pixel_can_reach_every_output():
    """The receptive field covers the image: the output at a corner depends on the far corner."""
    model = tiny()
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    model(x, torch.tensor(5))[0, 0, 0, 0].backward()
    assert x.grad[0, 0, -1, -1] != 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"base": 0}, "base"), ({"patch": -1}, "patch"), ({"mults": ()}, "mults"), ({"mults": (1, 1.5)}, "mults")],
)
def test_bad_unet_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_bad_unet_inputs_are_rejected():
    model = tiny()
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(2, 1, 60, 60), torch.tensor(3))
    with pytest.raises(ValueError, match="t must be"):
        model(torch.randn(2, 1, 64, 64), torch.tensor([1, 2, 3]))


def test_ema_tracks_the_weights_and_resumes(tmp_path):
    data = torch.randn(32, 1, 64, 64).sign()
    s = cosine_schedule(100)

    def run(steps, ckpt):
        model = tiny()
        ema = copy.deepcopy(model)
        for _ in train(model, data, s, steps=steps, batch_size=8, lr=1e-3, checkpoint=ckpt, save_every=2,
                       progress=False, ema=ema, ema_decay=0.9):
            pass
        return model, ema

    model, ema = run(4, None)
    moved = [not torch.equal(e, p) for e, p in zip(ema.parameters(), model.parameters(), strict=True)]
    assert any(moved)  # the average lags the weights
    ckpt = tmp_path / "c.pt"
    run(2, ckpt)  # interrupted after two steps
    _, resumed = run(4, ckpt)
    for a, b in zip(resumed.parameters(), ema.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="ema_decay"):
        next(train(tiny(), data, s, steps=1, batch_size=8, ema=tiny(), ema_decay=1.0))


def test_window_steps_maps_original_times_to_respaced_steps():
    s = respace(cosine_schedule(1000), 250)
    lo, hi = window_steps(s, 700, 850)
    assert int(s.timesteps[lo]) >= 700 and int(s.timesteps[lo - 1]) < 700
    assert int(s.timesteps[hi]) <= 850 and int(s.timesteps[hi + 1]) > 850
    assert window_steps(cosine_schedule(1000), 0, 14) == (0, 14)
    with pytest.raises(ValueError, match="t_lo must be at most t_hi"):
        window_steps(s, 850, 700)
    with pytest.raises(ValueError, match="no step"):
        window_steps(respace(cosine_schedule(1000), 5), 1, 2)
