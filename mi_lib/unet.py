"""A small U-Net that predicts eps for 64 x 64 images (paper Sec. 4.2: an unconditional
U-Net DDPM on Simple Shapes), sized to train on a CPU.

The paper does not state its U-Net (PAPER.md: open). This one keeps the parts that matter for
the experiments: residual blocks with a time embedding, an encoder and decoder joined by skip
connections, and a bottleneck whose features the chapters read (paper Fig. 10). To make it
cheap it starts by folding each patch x patch block of pixels into channels (pixel unshuffle,
an exact rearrangement) and unfolds them at the end, so the convolutions run at 16 x 16 for a
64 x 64 image with patch 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mi_lib.checks import check_positive_int
from mi_lib.models import timestep_embedding


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the time embedding's projection per channel, then
    GroupNorm -> SiLU -> conv, with a skip (1 x 1 conv when the width changes)."""

    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        u = self.conv1(F.silu(self.norm1(h))) + self.time(temb)[:, :, None, None]
        return self.skip(h) + self.conv2(F.silu(self.norm2(u)))


class UNet(nn.Module):
    """eps_theta(x_t, t) (or v_theta, trained with prediction='v': mi_lib.prediction) for
    images (N, channels, H, W), H and W divisible by patch * 2 ** (len(mults) - 1).

    Levels: for each width base * m in mults, n_res ResBlocks, then a stride-2 convolution
    down (none after the last). The bottleneck is two ResBlocks at the coarsest level; its
    output is what `features` returns. The decoder mirrors the encoder, concatenating the
    encoder's activations at each level.
    """

    def __init__(
        self, channels: int = 1, base: int = 64, mults: tuple[int, ...] = (1, 2, 2), n_res: int = 1, patch: int = 4
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("base", base), ("n_res", n_res), ("patch", patch)):
            check_positive_int(name, value)
        if not mults or any(int(m) != m or m < 1 for m in mults):
            raise ValueError(f"mults must be a non-empty tuple of positive ints, got {mults!r}")
        self.channels, self.patch, self.base, self.mults = channels, patch, base, tuple(mults)
        t_dim = 4 * base
        self.temb = nn.Sequential(nn.Linear(base, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(channels * patch**2, base, 3, padding=1)
        widths = [base * m for m in mults]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, c = [base], base
        for i, w in enumerate(widths):
            for _ in range(n_res):
                self.down.append(ResBlock(c, w, t_dim))
                c = w
                skips.append(c)
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, t_dim), ResBlock(c, c, t_dim)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(n_res + 1):
                self.up.append(ResBlock(c + skips.pop(), w, t_dim))
                c = w
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, channels * patch**2, 3, padding=1))
        self.n_res = n_res

    def _check(self, x: torch.Tensor) -> None:
        div = self.patch * 2 ** (len(self.mults) - 1)
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % div or x.shape[3] % div:
            raise ValueError(
                f"x must have shape (N, {self.channels}, H, W) with H and W divisible by {div}, got {tuple(x.shape)}"
            )

    def _time(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1)
        if t.numel() not in (1, x.shape[0]):
            raise ValueError(f"t must be 0-dim or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return self.temb(timestep_embedding(t, self.base)).expand(x.shape[0], -1)

    def _encode(self, x: torch.Tensor, temb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.stem(F.pixel_unshuffle(x, self.patch))
        hs, blocks = [h], iter(self.down)
        for i in range(len(self.mults)):
            for _ in range(self.n_res):
                h = next(blocks)(h, temb)
                hs.append(h)
            if i < len(self.mults) - 1:
                h = self.downsample[i](h)
                hs.append(h)
        for blk in self.mid:
            h = blk(h, temb)
        return h, hs

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The bottleneck's output for x_t = x at time t: (N, base * mults[-1], H', W') with
        H' = H / (patch * 2 ** (len(mults) - 1)). Paper Fig. 10 embeds these."""
        self._check(x)
        return self._encode(x, self._time(x, t))[0]

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t) (or v_theta). x: (N, channels, H, W); t: (N,) integer times or 0-dim."""
        self._check(x)
        temb = self._time(x, t)
        h, hs = self._encode(x, temb)
        blocks, ups = iter(self.up), iter(self.upsample)
        for i in reversed(range(len(self.mults))):
            for _ in range(self.n_res + 1):
                h = next(blocks)(torch.cat([h, hs.pop()], dim=1), temb)
            if i > 0:
                h = next(ups)(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return F.pixel_shuffle(self.out(h), self.patch)
