"""The two-layer network f(a, b) = W phi(U e_a + V e_b) + mu.

Weights are kept in the paper's layout: ``U, V`` are (M, P) (row m is neuron m's input vector
u_m, v_m), ``W`` is (P, M) (column m is its output vector w_m), ``mu`` is (P,). The first layer
is computed by indexing columns (no one-hot matrix product). Any activation can be used at
evaluation time, whatever the network was trained with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .configs import ACTIVATIONS, ConfigError, RunConfig


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation ``name`` as a torch function (relu, quadratic, gelu, reverse_relu).

    Parameters
    ----------
    name : {"relu", "quadratic", "gelu", "reverse_relu"}
        The activation; ``quadratic`` is x**2 and ``reverse_relu`` is max(0, -x).

    Returns
    -------
    callable
        Elementwise tensor function.

    Raises
    ------
    ConfigError
        When ``name`` is not one of :data:`~memgen.configs.ACTIVATIONS`.
    """
    if name == "relu":
        return torch.relu
    if name == "quadratic":
        return torch.square
    if name == "gelu":
        return F.gelu
    if name == "reverse_relu":
        return lambda x: torch.relu(-x)
    raise ConfigError(f"activation={name!r} is not allowed; choose one of {', '.join(ACTIVATIONS)}")


@dataclass
class Weights:
    """Trained (or constructed) weights of one network, float32 on the CPU.

    Parameters
    ----------
    U, V : torch.Tensor
        (M, P) first-layer weights; row m is neuron m's input vector u_m, v_m.
    W : torch.Tensor
        (P, M) second-layer weights; column m is neuron m's output vector w_m.
    mu : torch.Tensor
        (P,) output bias (zeros when unused).
    activation : str, default="relu"
        The activation the network was trained with (the default at evaluation).
    """

    U: torch.Tensor
    V: torch.Tensor
    W: torch.Tensor
    mu: torch.Tensor
    activation: str = "relu"

    @property
    def width(self) -> int:
        """Hidden width M (number of neurons)."""
        return self.U.shape[0]

    @property
    def p(self) -> int:
        """Modulus P (number of tokens and classes)."""
        return self.U.shape[1]

    def logits(self, a: np.ndarray | torch.Tensor | None = None, b: np.ndarray | torch.Tensor | None = None,
               activation: str | None = None, chunk: int = 8192) -> torch.Tensor:
        """Logits (N, P) for pairs (a, b); all p**2 pairs in row-major order when omitted.

        Parameters
        ----------
        a, b : numpy.ndarray or torch.Tensor or None, default=None
            (N,) operands; when either is None, all p**2 pairs in row-major order.
        activation : str or None, default=None
            Activation to evaluate with; None uses the training activation.
        chunk : int, default=8192
            Pairs per forward pass (bounds memory).

        Returns
        -------
        torch.Tensor
            (N, P) logits, computed without gradients.
        """
        p = self.p
        if a is None or b is None:
            idx = torch.arange(p * p)
            a, b = idx // p, idx % p
        a = torch.as_tensor(a, dtype=torch.long)
        b = torch.as_tensor(b, dtype=torch.long)
        phi = activation_fn(activation or self.activation)
        Ut, Vt, Wt = self.U.T, self.V.T, self.W.T
        out = []
        with torch.no_grad():
            for s in range(0, len(a), chunk):
                h = phi(Ut[a[s:s + chunk]] + Vt[b[s:s + chunk]])
                out.append(h @ Wt + self.mu)
        return torch.cat(out)

    def predict(self, activation: str | None = None) -> np.ndarray:
        """Predicted class of every pair, (p*p,) int array in row-major order.

        Parameters
        ----------
        activation : str or None, default=None
            Activation to evaluate with; None uses the training activation.

        Returns
        -------
        numpy.ndarray
            (p*p,) argmax of the logits of every pair.
        """
        return self.logits(activation=activation).argmax(-1).numpy()

    def subnetwork(self, neurons: np.ndarray | torch.Tensor, keep_bias: bool = True) -> Weights:
        """The network restricted to the given neuron indices (the others removed).

        Parameters
        ----------
        neurons : numpy.ndarray or torch.Tensor
            Indices of the neurons to keep.
        keep_bias : bool, default=True
            Keep the output bias mu; False sets it to zero.

        Returns
        -------
        Weights
            A network of width ``len(neurons)`` with the same activation.
        """
        idx = torch.as_tensor(np.asarray(neurons), dtype=torch.long)
        mu = self.mu if keep_bias else torch.zeros_like(self.mu)
        return Weights(self.U[idx], self.V[idx], self.W[:, idx], mu, self.activation)

    def to_state(self) -> dict[str, torch.Tensor | str]:
        """The weights as a plain dict, for saving.

        Returns
        -------
        dict
            ``U``, ``V``, ``W``, ``mu`` tensors and the ``activation`` name.
        """
        return {"U": self.U, "V": self.V, "W": self.W, "mu": self.mu, "activation": self.activation}

    @classmethod
    def from_state(cls, d: dict) -> Weights:
        """Rebuild weights from :meth:`to_state`'s dict.

        Parameters
        ----------
        d : dict
            With keys ``U``, ``V``, ``W``, ``mu`` and ``activation``.

        Returns
        -------
        Weights
            The weights.
        """
        return cls(d["U"], d["V"], d["W"], d["mu"], d["activation"])


# ---------------------------------------------------------------------------- batched params
def init_params(configs: list[RunConfig], device: torch.device) -> dict[str, torch.Tensor]:
    """Initial stacked parameters of a batch of runs (internal layout, leading run dimension).

    Each run is initialised from its own ``seed`` on the CPU, so the numbers do not depend on
    the batch it trains in or on the device. Runs of different widths may share a batch: each is
    drawn at its own width and padded with zero neurons to the widest (exact for an activation
    with phi(0) = 0: a zero neuron has zero output and zero gradient, and stays zero under Adam,
    AdamW and SGD). ``init="default"`` draws uniformly, as
    ``torch.nn.Linear`` does: U, V from U(-1/sqrt(2P), 1/sqrt(2P)) (fan-in 2P of the one-hot
    pair), W and mu from U(-1/sqrt(M), 1/sqrt(M)). ``init="doshi"`` draws U, V and W from
    N(0, (16 M)**(-2/3)) and sets mu = 0.

    Parameters
    ----------
    configs : list of RunConfig
        Runs sharing a batch key up to their widths (the first one gives p, ``tied`` and ``bias``).
    device : torch.device
        Where the parameters live.

    Returns
    -------
    dict of str to torch.Tensor
        ``Ut``, ``Vt`` (R, P, M) (``Vt`` absent when tied), ``Wt`` (R, M, P), ``mu`` (R, P)
        (absent without bias), each requiring gradients; M is the widest run's width.
    """
    c0 = configs[0]
    p, width = c0.p, max(c.width for c in configs)
    Ut, Vt, Wt, mu = [], [], [], []
    for c in configs:
        m = c.width
        g = torch.Generator().manual_seed(1_000_003 * c.seed + 17)
        if c.init == "doshi":
            std = (16 * m) ** (-1 / 3)  # variance (16 M)^(-2/3)
            def draw(*shape):
                return torch.randn(*shape, generator=g) * std
            Ut.append(draw(p, m))
            Vt.append(draw(p, m))
            Wt.append(draw(m, p))
            mu.append(torch.zeros(p))
        else:  # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            def unif(bound, *shape):
                return (torch.rand(*shape, generator=g) * 2 - 1) * bound
            b1, b2 = 1 / math.sqrt(2 * p), 1 / math.sqrt(m)
            Ut.append(unif(b1, p, m))
            Vt.append(unif(b1, p, m))
            Wt.append(unif(b2, m, p))
            mu.append(unif(b2, p))
        if m < width:  # zero neurons up to the batch's width
            for tables in (Ut, Vt):
                tables[-1] = F.pad(tables[-1], (0, width - m))
            Wt[-1] = F.pad(Wt[-1], (0, 0, 0, width - m))
    params = {"Ut": torch.stack(Ut), "Wt": torch.stack(Wt)}
    if not c0.tied:
        params["Vt"] = torch.stack(Vt)
    if c0.bias:
        params["mu"] = torch.stack(mu)
    return {k: v.to(device).requires_grad_(True) for k, v in params.items()}


#: How the first layer's backward pass forms dU, dV: ``index_add`` (a scatter; fastest on the CPU),
#: ``onehot`` (one batched GEMM onehot(a)^T @ g per table: no atomics, the GPU's tensor cores),
#: or ``auto`` (``onehot`` on CUDA, ``index_add`` elsewhere). Both give the same gradient up to
#: float summation order.
FIRST_LAYER_BACKWARD = "auto"


def _gather_sum(ctx, Ut, Vt, a, b) -> torch.Tensor:
    R, P, M = Ut.shape
    offs = torch.arange(R, device=a.device)[:, None] * P
    ctx.idx = ((offs + a).reshape(-1), (offs + b).reshape(-1))
    ctx.ab = (a, b)
    ctx.shape = (R, P, M)
    out = Ut.reshape(R * P, M).index_select(0, ctx.idx[0])
    return out.add_(Vt.reshape(R * P, M).index_select(0, ctx.idx[1])).view(R, len(a), M)


def _scatter_grads(ctx, g: torch.Tensor):
    (ia, ib), (R, P, M) = ctx.idx, ctx.shape
    mode = FIRST_LAYER_BACKWARD
    if mode == "onehot" or (mode == "auto" and g.is_cuda):
        # (P, N) @ (R, N, M) -> (R, P, M): a batched GEMM instead of an atomic scatter
        def table_grad(idx: torch.Tensor) -> torch.Tensor:
            return torch.matmul(F.one_hot(idx, P).to(g.dtype).T, g)

        gu = table_grad(ctx.ab[0]) if ctx.needs_input_grad[0] else None
        gv = table_grad(ctx.ab[1]) if ctx.needs_input_grad[1] else None
        return gu, gv, None, None
    g2 = g.reshape(-1, M)
    gu = g.new_zeros(R * P, M).index_add_(0, ia, g2).view(R, P, M) if ctx.needs_input_grad[0] else None
    gv = g.new_zeros(R * P, M).index_add_(0, ib, g2).view(R, P, M) if ctx.needs_input_grad[1] else None
    return gu, gv, None, None


class _PairSum(torch.autograd.Function):
    """pre[r, i] = Ut[r, a_i] + Vt[r, b_i] by row indexing on the flattened (R * P, M) tables
    (a contiguous row gather); the backward pass scatters with ``index_add_``, several times
    faster on the CPU than the ``index_put_`` that plain advanced indexing uses."""

    @staticmethod
    def forward(ctx, Ut, Vt, a, b):
        return _gather_sum(ctx, Ut, Vt, a, b)

    @staticmethod
    def backward(ctx, g):
        return _scatter_grads(ctx, g)


class _PairSumReLU(torch.autograd.Function):
    """relu(Ut[r, a_i] + Vt[r, b_i]), the ReLU applied in place on the gathered rows: one pass
    less over the (R, N, M) hidden tensor and no separate pre-activation tensor."""

    @staticmethod
    def forward(ctx, Ut, Vt, a, b):
        out = _gather_sum(ctx, Ut, Vt, a, b).relu_()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return _scatter_grads(ctx, torch.ops.aten.threshold_backward(g, out, 0))


def pair_sum(Ut: torch.Tensor, Vt: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pre-activations (R, N, M) = Ut[:, a] + Vt[:, b] (the first layer without one-hot products).

    Parameters
    ----------
    Ut, Vt : torch.Tensor
        (R, P, M) stacked first-layer weights.
    a, b : torch.Tensor
        (N,) long operands shared by all runs.

    Returns
    -------
    torch.Tensor
        (R, N, M) pre-activations; the backward pass scatters with ``index_add_``.
    """
    return _PairSum.apply(Ut, Vt, a, b)


def hidden(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor,
           activation: str) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(pre-activations, activations) of a batch of runs on pairs (a, b).

    ReLU is fused into the first-layer gather and returns ``None`` for the pre-activations
    (its derivative is ``h > 0``); other activations keep ``pre`` in the autograd graph.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters as from :func:`init_params` (``Vt`` absent: tied to ``Ut``).
    a, b : torch.Tensor
        (N,) long operands shared by all runs.
    activation : str
        The activation name.

    Returns
    -------
    pre : torch.Tensor or None
        (R, N, M) pre-activations, None for ReLU.
    h : torch.Tensor
        (R, N, M) activations.
    """
    Ut = params["Ut"]
    Vt = params.get("Vt", Ut)
    if activation == "relu":
        return None, _PairSumReLU.apply(Ut, Vt, a, b)
    pre = pair_sum(Ut, Vt, a, b)
    return pre, activation_fn(activation)(pre)


def readout(params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """Logits (R, N, P) = h W (+ mu, fused into the product).

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters; ``Wt`` (R, M, P) and, when present, ``mu`` (R, P) are used.
    h : torch.Tensor
        (R, N, M) activations.

    Returns
    -------
    torch.Tensor
        (R, N, P) logits.
    """
    if "mu" in params:
        return torch.baddbmm(params["mu"][:, None, :], h, params["Wt"])
    return torch.bmm(h, params["Wt"])


def batched_logits(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                   activation: str) -> torch.Tensor:
    """Logits (R, N, P) of a batch of runs on shared pairs (a, b).

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters as from :func:`init_params`.
    a, b : torch.Tensor
        (N,) long operands shared by all runs.
    activation : str
        The activation name.

    Returns
    -------
    torch.Tensor
        (R, N, P) logits.
    """
    return readout(params, hidden(params, a, b, activation)[1])


def weights_of_run(params: dict[str, torch.Tensor], r: int, activation: str,
                   width: int | None = None) -> Weights:
    """Run r's weights in the paper's layout, detached, float32 on the CPU.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters as from :func:`init_params`.
    r : int
        Index of the run in the batch.
    activation : str
        The run's training activation, stored with the weights.
    width : int or None, default=None
        The run's own width when the batch was padded to a wider one (None: the batch's).

    Returns
    -------
    Weights
        U, V (M, P), W (P, M), mu (P,); V = U when tied, mu = 0 without bias.
    """
    m = width or params["Ut"].shape[2]
    Ut = params["Ut"][r, :, :m].detach().float().cpu()
    Vt = params["Vt"][r, :, :m].detach().float().cpu() if "Vt" in params else Ut
    Wt = params["Wt"][r, :m].detach().float().cpu()
    mu = params["mu"][r].detach().float().cpu() if "mu" in params else torch.zeros(Ut.shape[0])
    return Weights(Ut.T.contiguous(), Vt.T.contiguous(), Wt.T.contiguous(), mu.clone(), activation)


def strength(weights: Weights) -> np.ndarray:
    """Str(m) = ||w_m||_inf * phi(||u_m||_inf + ||v_m||_inf) (Algorithm 1's task-agnostic score).

    phi is the training activation; ``reverse_relu`` uses its mirror image relu so that the
    score stays positive.

    Parameters
    ----------
    weights : Weights
        The network.

    Returns
    -------
    numpy.ndarray
        (M,) strength of every neuron.
    """
    act = "relu" if weights.activation == "reverse_relu" else weights.activation
    s = weights.U.abs().amax(1) + weights.V.abs().amax(1)
    return (weights.W.abs().amax(0) * activation_fn(act)(s)).numpy()
