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
from .train import resolve_device


class TwoLayer(nn.Module):
    """f(a, b) = W phi(U e_a + V e_b) + mu, initialised exactly like the batched engine.

    Parameters
    ----------
    config : RunConfig
        The run: its initial weights come from :func:`~memgen.model.init_params`.
    """

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
        """Logits of the pairs (a, b).

        Parameters
        ----------
        a, b : torch.Tensor
            (N,) long operands.

        Returns
        -------
        torch.Tensor
            (N, P) logits.
        """
        V = self.Vt if self.Vt is not None else self.Ut
        out = self.phi(self.Ut[a] + V[b]) @ self.Wt
        return out + self.mu if self.mu is not None else out

    def weights(self) -> Weights:
        """The current weights in the paper's layout, detached.

        Returns
        -------
        Weights
            U, V (M, P), W (P, M), mu (P,); V = U when tied, mu = 0 without bias.
        """
        V = self.Vt if self.Vt is not None else self.Ut
        mu = self.mu if self.mu is not None else torch.zeros(self.Ut.shape[0], device=self.Ut.device)
        cpu = lambda x: x.detach().float().cpu()  # noqa: E731
        return Weights(cpu(self.Ut).T.contiguous(), cpu(V).T.contiguous(), cpu(self.Wt).T.contiguous(),
                       cpu(mu).clone(), self.activation)


def make_optimizer(config: RunConfig, model: TwoLayer) -> list[torch.optim.Optimizer]:
    """The stock torch optimizer(s) for ``config`` (Muon: Muon on matrices, AdamW on mu).

    Parameters
    ----------
    config : RunConfig
        Its optimizer, lr, weight_decay, beta1 and beta2 are used.
    model : TwoLayer
        The network whose parameters are optimised.

    Returns
    -------
    list of torch.optim.Optimizer
        One optimizer, or two for Muon (Muon on the matrices, AdamW on the bias when present).
    """
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
    """Train one run the straightforward way and return its final weights.

    Parameters
    ----------
    config : RunConfig
        The run (full batch; ``batch_size`` is not used), trained on ``config.device``.

    Returns
    -------
    Weights
        The weights after ``config.steps`` steps.
    """
    dev = resolve_device(config.device)
    data = make_dataset(config)
    a = torch.as_tensor(data.a[data.train_idx], device=dev)
    b = torch.as_tensor(data.b[data.train_idx], device=dev)
    y = torch.as_tensor(data.train_labels, device=dev)
    model = TwoLayer(config).to(dev)
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
