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

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .configs import RunConfig
from .metrics import METRICS, subset_accuracies
from .model import Weights, batched_logits, hidden, init_params, readout, weights_of_run
from .tasks import make_dataset

HISTORY_KEYS = ("step", "loss", *METRICS, "grad_clean", "grad_noisy")


class DivergenceError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class ResourceError(RuntimeError):
    """A run (or batch of runs) would not fit in memory."""


@dataclass
class Run:
    """A finished (or failed) training run.

    ``history`` maps each name in :data:`HISTORY_KEYS` to a list (one entry per recorded step);
    ``weights`` are the final weights; ``failed`` holds the reason when the run diverged.
    """

    config: RunConfig
    history: dict[str, list[float]]
    weights: Weights | None
    meta: dict = field(default_factory=dict)
    failed: str | None = None

    def final(self, name: str) -> float:
        """The last recorded value of a history metric."""
        return self.history[name][-1]


def record_steps(steps: int) -> list[int]:
    """Steps at which history is recorded: every step up to 32, every 4th up to 256, then 40
    log-spaced points, always including 0 and ``steps``."""
    s = set(range(0, min(steps, 32) + 1))
    s.update(range(32, min(steps, 256) + 1, 4))
    if steps > 256:
        s.update(int(round(x)) for x in np.geomspace(256, steps, 40))
    s.add(steps)
    return sorted(x for x in s if x <= steps)


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ResourceError("device='cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def estimate_bytes(configs: list[RunConfig]) -> int:
    """Rough peak memory of training ``configs`` as one batch (bytes, float32)."""
    c = configs[0]
    p, m, r = c.p, c.width, len(configs)
    n = c.batch_size or c.n_train
    params = (3 * p * m + p) * r
    acts = r * max(n, p * p) * (4 * m + 4 * p)  # pre-activation, activation, their grads, logits
    return 4 * (5 * params + acts) + 64 * 2**20


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (bytes)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def check_fits(configs: list[RunConfig], device: torch.device) -> None:
    """Raise :class:`ResourceError` before allocating when the batch cannot fit."""
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
    ``lr`` and ``wd`` are (R,) tensors.
    """

    def __init__(self, name: str, params: dict[str, torch.Tensor], lr: torch.Tensor,
                 wd: torch.Tensor, beta1: float, beta2: float, eps: float = 1e-8) -> None:
        self.name, self.lr, self.wd, self.b1, self.b2, self.eps = name, lr, wd, beta1, beta2, eps
        self.t = 0
        self.state = {k: {"m": torch.zeros_like(v), "v": torch.zeros_like(v)} for k, v in params.items()}

    def state_dict(self) -> dict:
        return {"t": self.t, "state": self.state}

    def load_state_dict(self, d: dict) -> None:
        self.t, self.state = d["t"], d["state"]

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        for k, p in params.items():
            g, st = grads[k], self.state[k]
            lr, wd = _col(self.lr, p), _col(self.wd, p)
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
                bc1, bc2 = 1 - self.b1**self.t, 1 - self.b2**self.t
                denom = (st["v"].sqrt() / math.sqrt(bc2)).add_(self.eps)
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


def _progress(total: int, desc: str, enabled: bool | None):
    mode = os.environ.get("MEMGEN_PROGRESS", "auto")
    if enabled is False or mode == "off":
        return None
    if enabled is None and total < 20_000:
        return None
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, mininterval=1.0)


def train_batch(configs: list[RunConfig], *, progress: bool | None = None,
                checkpoint_path: str | os.PathLike | None = None,
                checkpoint_every: int = 0) -> list[Run]:
    """Train runs that share a batch key together; return one :class:`Run` per config.

    Parameters
    ----------
    configs : runs with equal :meth:`RunConfig.batch_key`.
    progress : show a tqdm bar (None: only for long batches; env MEMGEN_PROGRESS=off|text|auto).
    checkpoint_path, checkpoint_every : when both are set, the batch state is saved atomically
        every ``checkpoint_every`` steps and a matching checkpoint found there is resumed from;
        the result is identical to an uninterrupted run (CPU). The file is removed at the end.

    A run whose loss becomes NaN/inf is stopped and returned with ``failed`` set (message with
    config, step and loss) and no weights; the other runs of the batch continue.
    """
    if not configs:
        return []
    c0 = configs[0]
    if any(c.batch_key() != c0.batch_key() for c in configs):
        raise ValueError("train_batch needs configs that share a batch key (see RunConfig.batch_key)")
    device = resolve_device(c0.device)
    check_fits(configs, device)
    data = [make_dataset(c) for c in configs]
    d0 = data[0]
    t = lambda x, dt=torch.long: torch.as_tensor(np.asarray(x), dtype=dt, device=device)  # noqa: E731
    a_tr, b_tr = t(d0.a[d0.train_idx]), t(d0.b[d0.train_idx])
    true, train_idx, test_idx = t(d0.true), t(d0.train_idx), t(d0.test_idx)
    y = torch.stack([t(d.train_labels) for d in data])
    noisy = torch.stack([t(d.noisy, torch.bool) for d in data])
    act = c0.activation
    params = init_params(configs, device)
    opt = BatchedOptimizer(c0.optimizer, params, t([c.lr for c in configs], torch.float32),
                           t([c.weight_decay for c in configs], torch.float32), c0.beta1, c0.beta2)
    R, n = len(configs), len(d0.train_idx)
    alive = torch.ones(R, dtype=torch.bool, device=device)
    failed: list[str | None] = [None] * R
    hist = {k: [] for k in HISTORY_KEYS}
    gen = torch.Generator().manual_seed(c0.split_seed * 7 + 1)
    start, t0 = 0, time.perf_counter()
    if checkpoint_path and os.path.exists(checkpoint_path):
        start = _resume(checkpoint_path, configs, params, opt, hist, gen, alive, failed)
    marks = set(record_steps(c0.steps))
    bar = _progress(R * c0.steps * c0.width, f"training {R} run(s) M={c0.width}", progress)

    a_te, b_te = t(d0.a[d0.test_idx]), t(d0.b[d0.test_idx])

    def forward(sel: torch.Tensor | None):
        """pre-activations, activations, logits and per-run losses on the training pairs."""
        a, b, yy = (a_tr, b_tr, y) if sel is None else (a_tr[sel], b_tr[sel], y[:, sel])
        pre, h = hidden(params, a, b, act)
        logits = readout(params, h)
        return pre, h, logits, _losses(logits, yy, c0.loss)

    def record(step: int, losses: torch.Tensor, fwd) -> None:
        """History at ``step``, reusing the training forward pass (full batch)."""
        if c0.batch_size:  # the minibatch forward does not cover the training set
            frozen = {k: v.detach().requires_grad_(k == "Ut") for k, v in params.items()}
            pre, h = hidden(frozen, a_tr, b_tr, act)
            logits = readout(frozen, h)
        else:
            pre, h, logits, _ = fwd
        gn = _sample_grad_norms(pre, h, logits, y, params["Wt"], c0.loss, "mu" in params)
        with torch.no_grad():
            pred = torch.empty(R, len(d0.true), dtype=torch.long, device=device)
            pred[:, train_idx] = logits.argmax(-1)
            pred[:, test_idx] = batched_logits(params, a_te, b_te, act).argmax(-1)
            acc = subset_accuracies(pred, true, train_idx, test_idx, y, noisy)
        hist["step"].append(step)
        hist["loss"].append(losses.detach().double().cpu())
        for k in METRICS:
            hist[k].append(acc[k].cpu())
        for k, mask in (("grad_clean", ~noisy), ("grad_noisy", noisy)):
            cnt = mask.sum(1)
            val = torch.where(cnt > 0, (gn * mask).sum(1) / cnt.clamp(min=1), torch.nan)
            hist[k].append(val.double().cpu())

    for step in range(start, c0.steps + 1):
        sel = torch.randperm(n, generator=gen)[: c0.batch_size].to(device) if c0.batch_size else None
        fwd = forward(sel)
        losses = fwd[3]
        bad = alive & ~torch.isfinite(losses)
        if bad.any():
            for r in torch.nonzero(bad).flatten().tolist():
                failed[r] = (f"run diverged at step {step}: loss={losses[r].item()} for "
                             f"{configs[r].label()} (lr={configs[r].lr:g}, key {configs[r].key()}); "
                             "try a smaller lr")
            alive &= ~bad
            with torch.no_grad():  # park diverged runs: zero params and state, lr 0
                for v in params.values():
                    v[bad] = 0.0
                for st in opt.state.values():
                    for x in st.values():
                        x[bad] = 0.0
            opt.lr = opt.lr * alive
            fwd = forward(sel)
            losses = fwd[3]
        if step in marks:
            record(step, losses, fwd)
        if step == c0.steps or not alive.any():
            break
        grads = torch.autograd.grad(losses.sum(), list(params.values()))
        opt.step(params, dict(zip(params, grads)))
        if bar is not None:
            bar.update(R * c0.width)
        if checkpoint_path and checkpoint_every and (step + 1) % checkpoint_every == 0 \
                and step + 1 < c0.steps:
            _save_checkpoint(checkpoint_path, configs, step + 1, params, opt, hist, gen, alive, failed)
    if bar is not None:
        bar.close()
    if checkpoint_path and os.path.exists(checkpoint_path):
        os.remove(checkpoint_path)
    seconds = time.perf_counter() - t0
    runs = []
    for r, c in enumerate(configs):
        h = {k: ([int(s) for s in hist["step"]] if k == "step" else [float(v[r]) for v in hist[k]])
             for k in HISTORY_KEYS}
        meta = {"seconds": seconds, "batch_size": R, "device": str(device), "torch": str(torch.__version__)}
        w = None if failed[r] else weights_of_run(params, r, c.activation)
        runs.append(Run(c, h, w, meta, failed[r]))
    return runs


# ---------------------------------------------------------------------------- checkpoints
def _save_checkpoint(path, configs, step, params, opt, hist, gen, alive, failed) -> None:
    from .store import atomic_save

    atomic_save(path, {
        "keys": [c.key() for c in configs], "step": step,
        "params": {k: v.detach().cpu() for k, v in params.items()},
        "opt": {"t": opt.t, "state": {k: {s: x.cpu() for s, x in v.items()} for k, v in opt.state.items()},
                "lr": opt.lr.cpu()},
        "hist": hist, "gen": gen.get_state(), "alive": alive.cpu(), "failed": failed,
    })


def _resume(path, configs, params, opt, hist, gen, alive, failed) -> int:
    from .store import StoreError, checked_load

    try:
        ck = checked_load(path)
    except StoreError:
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
    return ck["step"]
