"""Training: one loop for one run or a stacked batch of runs.

Runs that share shapes (same task, p, split, width, activation, optimizer, steps; see
:meth:`RunConfig.batch_key`) train together: every parameter has a leading run dimension, one
forward/backward serves all runs, and the optimizer step takes per-run learning rates and weight
decays as tensors. Each run's loss is its own mean, and the runs' losses are summed, so every
run gets exactly the gradient it would get alone.

History is recorded densely early (the noise-first finding lives in the first few hundred
steps) and log-spaced later; see :func:`record_steps`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import StoreError, atomic_save, checked_load
from .configs import RunConfig
from .metrics import METRICS, subset_accuracies
from .model import Weights, batched_logits, hidden, init_params, readout, weights_of_run
from .tasks import Dataset, make_dataset

HISTORY_KEYS = ("step", "loss", *METRICS, "grad_clean", "grad_noisy")


class DivergenceError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class ResourceError(RuntimeError):
    """A run (or batch of runs) would not fit in memory."""


@dataclass
class Run:
    """A finished (or failed) training run.

    Parameters
    ----------
    config : RunConfig
        The run's configuration.
    history : dict of str to list of float
        Each name in :data:`HISTORY_KEYS` to a list, one entry per recorded step (see
        :func:`record_steps`).
    weights : Weights or None
        The final weights; None when the run failed.
    meta : dict, default={}
        Facts about the training (seconds, batch size, device, torch version).
    failed : str or None, default=None
        The reason when the run diverged, else None.
    """

    config: RunConfig
    history: dict[str, list[float]]
    weights: Weights | None
    meta: dict = field(default_factory=dict)
    failed: str | None = None

    def final(self, name: str) -> float:
        """The last recorded value of a history metric.

        Parameters
        ----------
        name : str
            A key of :data:`HISTORY_KEYS`, e.g. ``test_acc``.

        Returns
        -------
        float
            The value at the last recorded step.
        """
        return self.history[name][-1]

    @cached_property
    def data(self) -> Dataset:
        """The run's dataset (split, labels, noise masks), built once and cached."""
        return make_dataset(self.config)


def record_steps(steps: int) -> list[int]:
    """Steps at which history is recorded.

    Every step up to 32, every 4th up to 256, then 40 log-spaced points, always including 0 and
    ``steps``.

    Parameters
    ----------
    steps : int
        The run's number of optimizer steps.

    Returns
    -------
    list of int
        Sorted distinct steps in 0..steps.
    """
    s = set(range(0, min(steps, 32) + 1))
    s.update(range(32, min(steps, 256) + 1, 4))
    if steps > 256:
        s.update(int(round(x)) for x in np.geomspace(256, steps, 40))
    s.add(steps)
    return sorted(x for x in s if x <= steps)


def resolve_device(name: str) -> torch.device:
    """Turn a device name into a torch device: ``auto`` means CUDA when available, else CPU.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda"}
        The configured device.

    Returns
    -------
    torch.device
        The device to train on.

    Raises
    ------
    ResourceError
        When ``cuda`` is asked for and no CUDA device is available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ResourceError("device='cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def estimate_bytes(configs: list[RunConfig]) -> int:
    """Rough peak memory of training ``configs`` as one batch (bytes, float32).

    Parameters
    ----------
    configs : list of RunConfig
        Runs sharing a batch key.

    Returns
    -------
    int
        Estimated bytes: parameters with optimizer state and gradients, activations, logits and
        a fixed 64 MiB overhead.
    """
    c = configs[0]
    p, m, r = c.p, max(x.width for x in configs), len(configs)
    n = c.batch_size or c.n_train
    params = (3 * p * m + p) * r
    acts = r * max(n, p * p) * (4 * m + 4 * p)  # pre-activation, activation, their grads, logits
    return 4 * (5 * params + acts) + 64 * 2**20


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (bytes).

    Parameters
    ----------
    device : torch.device
        A CUDA device (its free memory) or the CPU (available physical pages; 8 GiB when the
        system does not tell).

    Returns
    -------
    int
        Free bytes.
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


#: On CUDA, runs up to this width share one launch, padded with zero neurons to the widest of
#: them: a CUDA step costs about the same at any width up to about a thousand neurons (it is
#: launch-bound), so a sweep of small widths becomes one loop instead of one per width.
PAD_WIDTHS_CUDA = 1025


def pad_widths_up_to(device: torch.device | str) -> int:
    """Largest width at which runs of different widths may share one padded batch (0: never).

    Padding is exact (see :func:`memgen.model.init_params`) but costs the padded neurons' FLOPs,
    so it pays only where a step is launch-bound: by default on CUDA (up to
    :data:`PAD_WIDTHS_CUDA`), never on the CPU. ``MEMGEN_PAD_WIDTHS=N`` sets the limit on every
    device (0 turns padding off).

    Parameters
    ----------
    device : torch.device or str
        The training device (a config's ``device``: ``auto`` means CUDA when available).

    Returns
    -------
    int
        The width limit; 0 when widths do not share batches.
    """
    raw = os.environ.get("MEMGEN_PAD_WIDTHS", "auto").strip().lower()
    if raw != "auto":
        if not raw.isdigit():
            raise ValueError(f"MEMGEN_PAD_WIDTHS={raw!r} is not allowed; use auto or a width >= 0 (0: off)")
        return int(raw)
    name = device.type if isinstance(device, torch.device) else device
    cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    return PAD_WIDTHS_CUDA if cuda else 0


def pad_key(config: RunConfig) -> tuple | None:
    """The batch key of ``config`` without its width: runs with equal pad keys may train as one
    padded batch. None when the update rule depends on the width (``muon``, whose step size
    scales with the matrix shape).

    Parameters
    ----------
    config : RunConfig
        The run.

    Returns
    -------
    tuple or None
        ``("padded", *batch key without width)``, or None.
    """
    if config.optimizer == "muon":
        return None
    return ("padded", *(kv for kv in config.batch_key() if kv[0] != "width"))


def can_pad(configs: list[RunConfig]) -> bool:
    """Whether runs that differ only in width (besides what a batch key lets differ) may train
    as one padded batch (see :func:`pad_key`).

    Parameters
    ----------
    configs : list of RunConfig
        Candidate runs.

    Returns
    -------
    bool
        True when they share one :func:`pad_key` that is not None.
    """
    keys = {pad_key(c) for c in configs}
    return len(keys) == 1 and None not in keys


def check_fits(configs: list[RunConfig], device: torch.device) -> None:
    """Raise :class:`ResourceError` before allocating when the batch cannot fit.

    Parameters
    ----------
    configs : list of RunConfig
        Runs sharing a batch key.
    device : torch.device
        Where they would train.

    Raises
    ------
    ResourceError
        When :func:`estimate_bytes` exceeds 90% of :func:`available_bytes`.
    """
    need, have = estimate_bytes(configs), available_bytes(device)
    if need > 0.9 * have:
        raise ResourceError(
            f"training {len(configs)} run(s) like {configs[0].label()} needs about "
            f"{need / 2**30:.2f} GiB but only {have / 2**30:.2f} GiB is free on {device}; "
            "use a smaller width or fewer runs at once")


# ---------------------------------------------------------------------------- optimizers
def _col(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-run scalars (R,) shaped to broadcast against a stacked parameter."""
    return x.view(-1, *([1] * (like.dim() - 1)))


def _newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Batched version of torch.optim.Muon's orthogonalisation (bfloat16, quintic)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.transpose(-2, -1)
    x = x / x.flatten(1).norm(dim=1).clamp(min=eps).view(-1, 1, 1)
    for _ in range(steps):
        gram = x @ x.transpose(-2, -1)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    if tall:
        x = x.transpose(-2, -1)
    return x.to(g.dtype)


class BatchedOptimizer:
    """AdamW, Adam, SGD (with momentum) and Muon over stacked parameters.

    Semantics follow ``torch.optim``: AdamW and Muon decay weights decoupled
    (p -= lr * wd * p); Adam and SGD add wd * p to the gradient. Muon orthogonalises the
    momentum of the matrices U, V, W (Nesterov, lr scaled by sqrt(max(1, rows/cols)) of the
    stored (P, M) / (M, P) matrices, as torch.optim.Muon does) and uses AdamW for the bias mu.

    Parameters
    ----------
    name : {"adamw", "adam", "sgd", "muon"}
        The update rule.
    params : dict of str to torch.Tensor
        Stacked parameters (leading run dimension R); state is allocated for each.
    lr : torch.Tensor
        (R,) per-run learning rates.
    wd : torch.Tensor
        (R,) per-run weight decays.
    beta1 : float
        Adam's first beta; the momentum of SGD and Muon.
    beta2 : float
        Adam's second beta.
    eps : float, default=1e-8
        Adam's denominator epsilon.
    """

    def __init__(self, name: str, params: dict[str, torch.Tensor], lr: torch.Tensor,
                 wd: torch.Tensor, beta1: float, beta2: float, eps: float = 1e-8) -> None:
        self.name, self.lr, self.wd, self.b1, self.b2, self.eps = name, lr, wd, beta1, beta2, eps
        self.t = 0
        self.state = {k: {"m": torch.zeros_like(v), "v": torch.zeros_like(v)} for k, v in params.items()}

    def state_dict(self) -> dict:
        """The optimizer's state, for checkpoints.

        Returns
        -------
        dict
            ``t`` (steps taken) and ``state`` (per parameter: ``m`` and ``v`` buffers).
        """
        return {"t": self.t, "state": self.state}

    def load_state_dict(self, d: dict) -> None:
        """Restore the state saved by :meth:`state_dict`.

        Parameters
        ----------
        d : dict
            With keys ``t`` and ``state``.
        """
        self.t, self.state = d["t"], d["state"]

    def bias_corrections(self) -> tuple[float, float]:
        """Adam's bias corrections at the current step, ``1 - beta1**t`` and ``sqrt(1 - beta2**t)``.

        Returns
        -------
        tuple of float
            Computed on the host in double precision (the eager step's scalars).
        """
        return 1 - self.b1**self.t, math.sqrt(1 - self.b2**self.t)

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
             update: Callable[..., None] | None = None) -> None:
        """Update ``params`` in place by one optimizer step.

        Parameters
        ----------
        params : dict of str to torch.Tensor
            The stacked parameters the state was built for.
        grads : dict of str to torch.Tensor
            Their gradients, by the same names.
        update : callable or None, default=None
            A compiled :meth:`update` (see :class:`CompiledStep`); None runs it eagerly with the
            bias corrections as host scalars.
        """
        self.t += 1
        if update is None:
            self.update(params, grads, self.state, self.lr, self.wd, *self.bias_corrections())
            return
        t = torch.full((), float(self.t), dtype=torch.float32, device=self.lr.device)
        update(params, grads, self.state, self.lr, self.wd, 1 - self.b1**t, (1 - self.b2**t).sqrt())

    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
               state: dict[str, dict[str, torch.Tensor]], lr_all: torch.Tensor, wd_all: torch.Tensor,
               bc1: float | torch.Tensor, sbc2: float | torch.Tensor) -> None:
        """The update rule itself, in place, with everything that changes per step passed in (so
        that a compiled copy sees only tensors: one fused kernel per parameter tensor).

        Parameters
        ----------
        params, grads : dict of str to torch.Tensor
            Parameters and their gradients.
        state : dict of str to dict
            Per parameter ``m`` and ``v`` buffers (updated in place).
        lr_all, wd_all : torch.Tensor
            (R,) per-run learning rates and weight decays.
        bc1, sbc2 : float or torch.Tensor
            ``1 - beta1**t`` and ``sqrt(1 - beta2**t)``.
        """
        for k, p in params.items():
            g, st = grads[k], state[k]
            lr, wd = _col(lr_all, p), _col(wd_all, p)
            if self.name == "muon" and p.dim() == 3:
                buf = st["m"].lerp_(g, 1 - self.b1)  # torch.optim.Muon's EMA momentum, Nesterov
                upd = _newton_schulz(g.lerp(buf, self.b1))
                rows, cols = p.shape[1], p.shape[2]  # as torch.optim.Muon sees our layout
                p.mul_(1 - lr * wd).sub_(lr * math.sqrt(max(1.0, rows / cols)) * upd)
            elif self.name == "sgd":
                g = g + wd * p
                buf = st["m"].mul_(self.b1).add_(g)
                p.sub_(lr * buf)
            else:  # adamw, adam, and muon's bias
                if self.name == "adam":
                    g = g + wd * p
                else:
                    p.mul_(1 - lr * wd)
                st["m"].lerp_(g, 1 - self.b1)
                st["v"].mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                denom = (st["v"].sqrt() / sbc2).add_(self.eps)
                p.addcdiv_(st["m"] * (lr / bc1), denom, value=-1.0)


# ---------------------------------------------------------------------------- the loop
def _losses(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-run mean loss (R,) of logits (R, N, P) against labels (R, N)."""
    r, n, p = logits.shape
    if loss == "ce":
        return F.cross_entropy(logits.reshape(r * n, p), y.reshape(-1), reduction="none").view(r, n).mean(1)
    onehot = F.one_hot(y, p).to(logits.dtype)
    return (logits - onehot).square().mean((1, 2))


def _sample_grad_norms(pre: torch.Tensor | None, h: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                       Wt: torch.Tensor, loss: str, has_mu: bool) -> torch.Tensor:
    """Per-sample gradient norm (R, N) of the loss w.r.t. all parameters, in closed form, from a
    forward pass whose ``pre`` -> ``h`` step is still in the autograd graph (``pre`` None: ReLU,
    whose derivative is h > 0):
    ||g_i||^2 = ||r_i||^2 ||h_i||^2 + 2 ||(W r_i) * phi'(z_i)||^2 + [bias] ||r_i||^2."""
    logits = logits.detach()
    p = logits.shape[-1]
    onehot = F.one_hot(y, p).to(logits.dtype)
    resid = logits.softmax(-1) - onehot if loss == "ce" else 2 * (logits - onehot) / p
    gh = torch.bmm(resid, Wt.detach().transpose(1, 2))
    if pre is None:
        gpre = gh.masked_fill(h.detach() <= 0, 0.0)
    else:
        gpre, = torch.autograd.grad(h, pre, grad_outputs=gh, retain_graph=True)
    r2 = resid.square().sum(-1)
    total = r2 * h.detach().square().sum(-1) + 2 * gpre.square().sum(-1) + has_mu * r2
    return total.sqrt()


def divergence_check_every(device: torch.device) -> int:
    """Steps between divergence checks: every step on the CPU (where a check costs nothing), every
    64 steps on CUDA, where a check is a host-device synchronisation.

    Parameters
    ----------
    device : torch.device
        The training device.

    Returns
    -------
    int
        The check interval (a diverged run is parked at the next check; its message names that step).
    """
    return 64 if device.type == "cuda" else 1


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Matrix products in ``fp32`` or ``tf32`` (CUDA only) inside the block; restored after.

    Parameters
    ----------
    precision : {"fp32", "tf32"}
        The precision of :attr:`RunConfig.precision`.

    Yields
    ------
    None
    """
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def compiled_step_enabled(device: torch.device) -> bool:
    """Whether the training step runs compiled (:class:`CompiledStep`).

    ``MEMGEN_COMPILE=1`` or ``0`` decides; unset (or ``auto``), only CUDA compiles, where the
    eager step is launch-bound (about 125 kernel launches a step) and CUDA graphs replay it whole.
    On the CPU the eager step is as fast and compiling costs tens of seconds per batch shape.

    Parameters
    ----------
    device : torch.device
        The training device.

    Returns
    -------
    bool
        True to compile.
    """
    mode = os.environ.get("MEMGEN_COMPILE", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        raise ValueError(f"MEMGEN_COMPILE={mode!r} is not allowed; use 0, 1 or auto")
    return mode == "1" or (mode == "auto" and device.type == "cuda")


def _train_losses(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, y: torch.Tensor,
                  activation: str, loss: str) -> torch.Tensor:
    """Per-run mean losses (R,): the part of the step that :class:`CompiledStep` compiles."""
    return _losses(readout(params, hidden(params, a, b, activation)[1]), y, loss)


class CompiledStep:
    """One training step (forward, backward, optimizer update) with the forward (and with it its
    backward, compiled on its first call) and the update compiled by ``torch.compile``; on CUDA in
    ``reduce-overhead`` mode, so that each is replayed as a CUDA graph, with parameters and
    optimizer state at static addresses.

    Shapes are static within a batch. The steps that record history or check for divergence run
    the eager forward (they need its intermediate tensors) and the compiled update. If compiling
    the forward, its backward or the update fails, that call says so in one line on stderr and the
    batch continues eagerly from the unchanged state.

    Parameters
    ----------
    opt : BatchedOptimizer
        The batch's optimizer (its :meth:`BatchedOptimizer.update` is compiled).
    params : dict of str to torch.Tensor
        The batch's parameters.
    device : torch.device
        The training device.
    """

    def __init__(self, opt: BatchedOptimizer, params: dict[str, torch.Tensor], device: torch.device) -> None:
        mode = "reduce-overhead" if device.type == "cuda" else "default"
        self.cuda = device.type == "cuda"
        if self.cuda:
            for t in [*params.values(), *(x for st in opt.state.values() for x in st.values())]:
                torch._dynamo.mark_static_address(t)
        self.losses = torch.compile(_train_losses, mode=mode, dynamic=False)
        self.update: Callable[..., None] | None = torch.compile(opt.update, mode=mode, dynamic=False)
        self.ok = True

    def __call__(self, params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, y: torch.Tensor,
                 c0: RunConfig, opt: BatchedOptimizer) -> None:
        """Take one full step in place (no history, no divergence check).

        Parameters
        ----------
        params : dict of str to torch.Tensor
            The parameters, updated in place.
        a, b, y : torch.Tensor
            Training pairs (N,) and labels (R, N) of this step.
        c0 : RunConfig
            The batch's first config (activation, loss).
        opt : BatchedOptimizer
            The optimizer, stepped once.
        """
        if self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        if self.ok:
            try:  # the backward is compiled on its first call, so it is watched too
                losses = self.losses(params, a, b, y, c0.activation, c0.loss)
                grads = torch.autograd.grad(losses.sum(), list(params.values()))
            except Exception as e:  # compiling failed (it precedes the update: nothing was changed)
                self._fail(e)
        if not self.ok:
            losses = _train_losses(params, a, b, y, c0.activation, c0.loss)
            grads = torch.autograd.grad(losses.sum(), list(params.values()))
        self.step(params, dict(zip(params, grads)), opt)

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], opt: BatchedOptimizer) -> None:
        """The optimizer step with the compiled update (eager once compiling has failed).

        Parameters
        ----------
        params, grads : dict of str to torch.Tensor
            Parameters (updated in place) and their gradients.
        opt : BatchedOptimizer
            The optimizer, stepped once.
        """
        t = opt.t
        if self.ok:
            try:
                opt.step(params, grads, self.update)
                return
            except Exception as e:  # compiling failed before the update ran
                opt.t = t
                self._fail(e)
        opt.step(params, grads)

    def _fail(self, e: Exception) -> None:
        self.ok, self.update = False, None
        print(f"memgen: compiled step unavailable ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
              "training eagerly", file=sys.stderr)


def _progress(work: int, desc: str, enabled: bool | None, steps: int):
    """A bar over ``steps`` (shown when asked, or when ``work`` = neuron-steps is large)."""
    mode = os.environ.get("MEMGEN_PROGRESS", "auto")
    if enabled is False or mode == "off":
        return None
    if enabled is None and work < 20_000:
        return None
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(total=steps, desc=desc, unit="step", leave=False, mininterval=1.0)


@dataclass
class _BatchData:
    """The batch's data on the device: training pairs, per-run labels and masks, test pairs."""

    a: torch.Tensor  # (N,) first operand of every training pair
    b: torch.Tensor
    y: torch.Tensor  # (R, N) training labels (noisy where ``noisy``)
    noisy: torch.Tensor  # (R, N) bool
    true: torch.Tensor  # (P*P,) true class of every pair
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    a_test: torch.Tensor
    b_test: torch.Tensor


def _batch_data(configs: list[RunConfig], device: torch.device) -> _BatchData:
    data = [make_dataset(c) for c in configs]
    d0 = data[0]

    def t(x, dtype=torch.long) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

    return _BatchData(a=t(d0.a[d0.train_idx]), b=t(d0.b[d0.train_idx]),
                      y=torch.stack([t(d.train_labels) for d in data]),
                      noisy=torch.stack([t(d.noisy, torch.bool) for d in data]),
                      true=t(d0.true), train_idx=t(d0.train_idx), test_idx=t(d0.test_idx),
                      a_test=t(d0.a[d0.test_idx]), b_test=t(d0.b[d0.test_idx]))


@dataclass
class _LoopState:
    """What the loop carries from step to step besides parameters and optimizer state."""

    alive: torch.Tensor  # (R,) bool: runs still training
    failed: list[str | None]  # per run: why it stopped, or None
    hist: dict[str, list]  # per history key: one (R,) entry per recorded step
    gen: torch.Generator  # minibatch order
    started: float = field(default_factory=time.perf_counter)  # when this process began the batch
    seconds_before: float = 0.0  # training time before a resumed checkpoint (another process)


def _forward(params: dict[str, torch.Tensor], d: _BatchData, sel: torch.Tensor | None, c0: RunConfig):
    """Pre-activations, activations, logits and per-run losses (R,) on the training pairs
    (``sel``: a minibatch of them)."""
    a, b, y = (d.a, d.b, d.y) if sel is None else (d.a[sel], d.b[sel], d.y[:, sel])
    pre, h = hidden(params, a, b, c0.activation)
    logits = readout(params, h)
    return pre, h, logits, _losses(logits, y, c0.loss)


def _park_diverged(step: int, losses: torch.Tensor, configs: list[RunConfig], st: _LoopState,
                   params: dict[str, torch.Tensor], opt: BatchedOptimizer) -> bool:
    """Stop the runs whose loss is no longer finite: record why, zero their parameters and
    optimizer state, set their learning rate to 0. Returns True when any run was parked."""
    bad = st.alive & ~torch.isfinite(losses)
    if not bad.any():
        return False
    for r in torch.nonzero(bad).flatten().tolist():
        c = configs[r]
        st.failed[r] = (f"run diverged at step {step}: loss={losses[r].item()} for {c.label()} "
                        f"(lr={c.lr:g}, key {c.key()}); try a smaller lr")
    st.alive &= ~bad
    with torch.no_grad():
        for v in params.values():
            v[bad] = 0.0
        for state in opt.state.values():
            for x in state.values():
                x[bad] = 0.0
    opt.lr = opt.lr * st.alive
    return True


def _record(step: int, fwd, params: dict[str, torch.Tensor], d: _BatchData, c0: RunConfig,
            hist: dict[str, list]) -> None:
    """Append the history at ``step``, reusing the training forward pass when it was full batch."""
    if c0.batch_size:  # the minibatch forward does not cover the training set
        frozen = {k: v.detach().requires_grad_(k == "Ut") for k, v in params.items()}
        pre, h = hidden(frozen, d.a, d.b, c0.activation)
        logits = readout(frozen, h)
        losses = fwd[3]
    else:
        pre, h, logits, losses = fwd
    gn = _sample_grad_norms(pre, h, logits, d.y, params["Wt"], c0.loss, "mu" in params)
    with torch.no_grad():
        pred = torch.empty(d.y.shape[0], len(d.true), dtype=torch.long, device=d.y.device)
        pred[:, d.train_idx] = logits.argmax(-1)
        pred[:, d.test_idx] = batched_logits(params, d.a_test, d.b_test, c0.activation).argmax(-1)
        acc = subset_accuracies(pred, d.true, d.train_idx, d.test_idx, d.y, d.noisy)
    hist["step"].append(step)
    hist["loss"].append(losses.detach().double())
    for k in METRICS:
        hist[k].append(acc[k].double())
    for k, mask in (("grad_clean", ~d.noisy), ("grad_noisy", d.noisy)):
        cnt = mask.sum(1)
        val = torch.where(cnt > 0, (gn * mask).sum(1) / cnt.clamp(min=1), torch.nan)
        hist[k].append(val.double())


def batch_label(configs: list[RunConfig]) -> str:
    """What a batch trains, for progress bars: ``training 3 run(s) M=17..65 padded to 65``.

    Parameters
    ----------
    configs : list of RunConfig
        The batch.

    Returns
    -------
    str
        One short line.
    """
    widths = sorted({c.width for c in configs})
    m = f"M={widths[0]}" if len(widths) == 1 else f"M={widths[0]}..{widths[-1]} padded to {widths[-1]}"
    return f"training {len(configs)} run(s) {m}"


def train_batch(configs: list[RunConfig], *, progress: bool | None = None,
                checkpoint_path: str | os.PathLike | None = None,
                checkpoint_every: int = 0, label: str | None = None) -> list[Run]:
    """Train runs that share a batch key together; return one :class:`Run` per config.

    Parameters
    ----------
    configs : list of RunConfig
        Runs with equal :meth:`RunConfig.batch_key`, or keys that differ only in ``width`` when
        :func:`can_pad` allows: they then train padded with zero neurons to the widest (the same
        runs up to float summation order; see :func:`memgen.model.init_params`).
    progress : bool or None, default=None
        Show a tqdm bar (steps, steps per second); None shows one only for long batches
        (environment variable ``MEMGEN_PROGRESS=off|text|auto`` overrides).
    checkpoint_path : str or path-like or None, default=None
        Where the batch state is saved atomically every ``checkpoint_every`` steps; a matching
        checkpoint found there is resumed from, and the result is identical to an
        uninterrupted run (CPU). The file is removed at the end.
    checkpoint_every : int, default=0
        Steps between checkpoints (0: never).
    label : str or None, default=None
        The progress bar's description (default: the number of runs and their widths).

    Returns
    -------
    list of Run
        In the order of ``configs``. A run whose loss became NaN/inf is stopped and returned
        with ``failed`` set (config, step and loss) and no weights; the others continue.
    """
    # setup: one device, the batch's data, stacked parameters, optimizer, resumed state
    if not configs:
        return []
    c0 = configs[0]
    if any(c.batch_key() != c0.batch_key() for c in configs) and not can_pad(configs):
        raise ValueError("train_batch needs configs that share a batch key (see RunConfig.batch_key), "
                         "or differ only in width with an optimizer other than muon")
    width = max(c.width for c in configs)
    device = resolve_device(c0.device)
    check_fits(configs, device)
    d = _batch_data(configs, device)
    params = init_params(configs, device)
    opt = BatchedOptimizer(c0.optimizer, params,
                           torch.tensor([c.lr for c in configs], dtype=torch.float32, device=device),
                           torch.tensor([c.weight_decay for c in configs], dtype=torch.float32, device=device),
                           c0.beta1, c0.beta2)
    R, n = len(configs), len(d.a)
    st = _LoopState(torch.ones(R, dtype=torch.bool, device=device), [None] * R,
                    {k: [] for k in HISTORY_KEYS}, torch.Generator().manual_seed(c0.split_seed * 7 + 1))
    start, t0 = 0, time.perf_counter()
    if checkpoint_path and os.path.exists(checkpoint_path):
        start = _resume(checkpoint_path, configs, params, opt, st)
    marks = set(record_steps(c0.steps))
    bar = _progress(R * c0.steps * width, label or batch_label(configs), progress, c0.steps)
    if bar is not None and start:  # resumed: the bar starts where the checkpoint left off
        bar.update(start)

    compiled = CompiledStep(opt, params, device) if compiled_step_enabled(device) else None
    check = divergence_check_every(device) if compiled is None else max(64, divergence_check_every(device))
    with matmul_precision(c0.precision):
        for step in range(start, c0.steps + 1):
            sel = torch.randperm(n, generator=st.gen)[: c0.batch_size].to(device) if c0.batch_size else None
            checked = step % check == 0 or step in marks or step == c0.steps
            if compiled is not None and not checked:
                # compiled: forward, backward and update in one go (CUDA graphs on CUDA)
                a, b, y = (d.a, d.b, d.y) if sel is None else (d.a[sel], d.b[sel], d.y[:, sel])
                compiled(params, a, b, y, c0, opt)
            else:
                # forward: per-run mean losses on the full batch (or a minibatch)
                fwd = _forward(params, d, sel, c0)
                # divergence: every `check` steps (no host sync in between), park runs whose
                # loss is no longer finite, then redo the forward pass
                if checked and _park_diverged(step, fwd[3], configs, st, params, opt):
                    fwd = _forward(params, d, sel, c0)
                # history: at the recorded steps, from this forward pass (kept on the device)
                if step in marks:
                    _record(step, fwd, params, d, c0, st.hist)
                if step == c0.steps or (checked and not st.alive.any()):
                    break
                # backward and update: the summed loss gives every run its own gradient
                grads = torch.autograd.grad(fwd[3].sum(), list(params.values()))
                if compiled is None:
                    opt.step(params, dict(zip(params, grads)))
                else:
                    compiled.step(params, dict(zip(params, grads)), opt)
            # progress and checkpoint
            if bar is not None:
                bar.update(1)
            if checkpoint_path and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < c0.steps:
                _save_checkpoint(checkpoint_path, configs, step + 1, params, opt, st)

    if bar is not None:
        bar.close()
    if checkpoint_path and os.path.exists(checkpoint_path):
        os.remove(checkpoint_path)
    return _runs(configs, params, st, {"seconds": time.perf_counter() - t0, "batch_size": R, "batch_width": width,
                                       "device": str(device), "torch": str(torch.__version__),
                                       "compiled": compiled is not None and compiled.ok})


def _runs(configs: list[RunConfig], params: dict[str, torch.Tensor], st: _LoopState, meta: dict) -> list[Run]:
    """One :class:`Run` per config from the final parameters and the recorded history."""
    # the history stayed on the device: one (recorded steps, R) copy per key
    table = {k: torch.stack([torch.as_tensor(v, dtype=torch.float64).to(params["Wt"].device) for v in st.hist[k]])
             .cpu().numpy() if st.hist[k] else np.zeros((0, len(configs))) for k in HISTORY_KEYS if k != "step"}
    runs = []
    for r, c in enumerate(configs):
        h = {k: ([int(s) for s in st.hist["step"]] if k == "step" else table[k][:, r].tolist()) for k in HISTORY_KEYS}
        w = None if st.failed[r] else weights_of_run(params, r, c.activation, c.width)
        runs.append(Run(c, h, w, {**meta, "seconds": meta["seconds"] + st.seconds_before}, st.failed[r]))
    return runs


# ---------------------------------------------------------------------------- checkpoints
def _save_checkpoint(path, configs, step, params, opt, st: _LoopState) -> None:
    alive, failed, hist, gen = st.alive, st.failed, st.hist, st.gen
    atomic_save(path, {
        "keys": [c.key() for c in configs], "step": step,
        "params": {k: v.detach().cpu() for k, v in params.items()},
        "opt": {"t": opt.t, "state": {k: {s: x.cpu() for s, x in v.items()} for k, v in opt.state.items()},
                "lr": opt.lr.cpu()},
        "hist": {k: [v.cpu() if isinstance(v, torch.Tensor) else v for v in vs] for k, vs in hist.items()},
        "gen": gen.get_state(), "alive": alive.cpu(), "failed": failed,
        "seconds": st.seconds_before + time.perf_counter() - st.started,
    })


def _resume(path, configs, params, opt, st: _LoopState) -> int:
    alive, failed, hist, gen = st.alive, st.failed, st.hist, st.gen
    try:
        ck = checked_load(path)
    except StoreError as e:
        print(f"memgen: not resuming from {path}: {e}; the batch starts over", file=sys.stderr)
        os.remove(path)
        return 0
    if ck["keys"] != [c.key() for c in configs]:
        return 0
    with torch.no_grad():
        for k, v in params.items():
            v.copy_(ck["params"][k])
    dev = next(iter(params.values())).device
    opt.t = ck["opt"]["t"]
    opt.state = {k: {s: x.to(dev) for s, x in v.items()} for k, v in ck["opt"]["state"].items()}
    opt.lr = ck["opt"]["lr"].to(dev)
    for k in hist:
        hist[k].extend(ck["hist"][k])
    gen.set_state(ck["gen"])
    alive.copy_(ck["alive"])
    failed[:] = ck["failed"]
    st.seconds_before = float(ck.get("seconds", 0.0))
    print(f"memgen: resuming {len(configs)} run(s) like {configs[0].label()} at step {ck['step']} of "
          f"{configs[0].steps} from {path}", file=sys.stderr)
    return ck["step"]
