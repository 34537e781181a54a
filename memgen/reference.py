"""A plain single-run training loop with ``nn.Module`` and ``torch.optim``.

This is the textbook version of what :func:`memgen.train.train_batch` does for many runs at once.
It is the baseline of the sweep benchmark and the reference the tests compare the batched
engine against (same initial weights, same data, same numbers to float tolerance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import RunConfig
from .model import Weights, activation_fn, init_params
from .tasks import make_dataset


class TwoLayer(nn.Module):
    """f(a, b) = W phi(U e_a + V e_b) + mu, initialised exactly like the batched engine."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        p0 = {k: v.detach()[0] for k, v in init_params([config], torch.device("cpu")).items()}
        self.Ut = nn.Parameter(p0["Ut"].clone())
        self.Vt = nn.Parameter(p0["Vt"].clone()) if "Vt" in p0 else None
        self.Wt = nn.Parameter(p0["Wt"].clone())
        self.mu = nn.Parameter(p0["mu"].clone()) if "mu" in p0 else None
        self.phi = activation_fn(config.activation)
        self.activation = config.activation

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        V = self.Vt if self.Vt is not None else self.Ut
        out = self.phi(self.Ut[a] + V[b]) @ self.Wt
        return out + self.mu if self.mu is not None else out

    def weights(self) -> Weights:
        V = self.Vt if self.Vt is not None else self.Ut
        mu = self.mu if self.mu is not None else torch.zeros(self.Ut.shape[0])
        return Weights(self.Ut.detach().T.contiguous(), V.detach().T.contiguous(),
                       self.Wt.detach().T.contiguous(), mu.detach().clone(), self.activation)


def make_optimizer(config: RunConfig, model: TwoLayer) -> list[torch.optim.Optimizer]:
    """The stock torch optimizer(s) for ``config`` (Muon: Muon on matrices, AdamW on mu)."""
    c = config
    params = [p for p in model.parameters()]
    if c.optimizer == "adamw":
        return [torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2))]
    if c.optimizer == "adam":
        return [torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2))]
    if c.optimizer == "sgd":
        return [torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay, momentum=c.beta1)]
    mats = [p for p in params if p.dim() == 2]
    opts: list[torch.optim.Optimizer] = [torch.optim.Muon(mats, lr=c.lr, weight_decay=c.weight_decay,
                                                          momentum=c.beta1)]
    rest = [p for p in params if p.dim() != 2]
    if rest:
        opts.append(torch.optim.AdamW(rest, lr=c.lr, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2)))
    return opts


def reference_train(config: RunConfig) -> Weights:
    """Train one run the straightforward way and return its final weights."""
    data = make_dataset(config)
    a = torch.as_tensor(data.a[data.train_idx])
    b = torch.as_tensor(data.b[data.train_idx])
    y = torch.as_tensor(data.train_labels)
    model = TwoLayer(config)
    opts = make_optimizer(config, model)
    for _ in range(config.steps):
        logits = model(a, b)
        if config.loss == "ce":
            loss = F.cross_entropy(logits, y)
        else:
            loss = (logits - F.one_hot(y, config.p).float()).square().mean()
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
    return model.weights()
