"""A training step replayed as one CUDA graph: the loss, its backward pass, Adam and the EMA.

A small network's step on a GPU is bound by its kernel launches, not by arithmetic (the
shapes U-Net: about 685 launches, 30 ms of CPU time against 3.6 ms of GPU time per step on an
H200). Captured once, the step is replayed with one launch. The step's inputs (batch, t, eps,
target) are drawn as before, outside the graph, from the step's own generators
(mi_lib.training: randomness is a function of (seed, step)), and copied into the graph's
static input tensors; so the graphed run takes the same steps as the eager one.

The first steps run eagerly on a side stream (CUDA's warm-up: cuBLAS and cuDNN handles, the
optimiser's state, autograd's buffers), then the graph is captured and replayed for every
step whose batch has the captured shape; an epoch's smaller last batch runs eagerly. Should
the capture fail (a warning says why), every later step runs eagerly. PyTorch's
notes on CUDA graphs ("whole-network capture") describe the pattern.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from mi_lib import compute
from mi_lib.schedules import Schedule

WARMUP = 3  # eager steps on a side stream before the capture


class GraphedStep:
    """Training steps of `model` (Adam `opt`, which must be `capturable`; EMA copy `ema` with
    `ema_decay`, or None): call it with each step's (x0, t, eps, target);
    it returns the step's loss as a 0-dim device tensor, without waiting for the device."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, schedule: Schedule,
                 ema: nn.Module | None = None, ema_decay: float = 0.999) -> None:
        device = next(model.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"model must be on a CUDA device to be captured, got {device}")
        if not all(g.get("capturable", False) for g in opt.param_groups):
            raise ValueError("opt must be created with capturable=True (compute.adam(..., capturable=True))")
        self.model, self.opt, self.schedule, self.ema, self.decay = model, opt, schedule, ema, ema_decay
        self.side = torch.cuda.Stream(device)
        self.warm, self.failed = 0, False
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[torch.Tensor, ...] = ()
        self.loss: torch.Tensor | None = None

    def _body(self, x0, t, eps, target) -> torch.Tensor:
        """The eager step of mi_lib.training on a GPU: loss and backward, Adam, EMA."""
        loss = compute.loss_backward(self.model, x0, self.schedule, t, eps, target, len(x0))
        self.opt.step()
        if self.ema is not None:
            compute.ema_update(self.ema, self.model, self.decay)
        return loss

    def eager(self, x0, t, eps, target) -> torch.Tensor:
        """One step without the graph (the warm-up, or a batch of another shape)."""
        self.opt.zero_grad(set_to_none=True)
        return self._body(x0, t, eps, target)

    def __call__(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        inputs = (x0, t, eps, target)
        if self.graph is not None and all(a.shape == s.shape for a, s in zip(inputs, self.static, strict=True)):
            for s, a in zip(self.static, inputs, strict=True):
                s.copy_(a)
            self.graph.replay()
            return self.loss.clone()
        if self.graph is not None or self.failed:
            return self.eager(*inputs)
        if self.warm < WARMUP:
            self.warm += 1
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                loss = self.eager(*inputs)
            torch.cuda.current_stream().wait_stream(self.side)
            return loss
        try:
            self._capture(inputs)
        except RuntimeError as err:  # a torch or driver that cannot capture this step: run eagerly
            warnings.warn(f"CUDA graph capture failed, the remaining steps run eagerly: {err}", stacklevel=2)
            self.graph, self.failed = None, True
            torch.cuda.synchronize()
        return self.eager(*inputs) if self.failed else self(*inputs)

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Record one step on static copies of `inputs` (nothing is computed: the caller replays it)."""
        self.static = tuple(a.clone() for a in inputs)
        self.opt.zero_grad(set_to_none=True)  # backward inside the graph allocates the grads it writes
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.loss = self._body(*self.static)
        self.graph = graph
