"""A one-layer Transformer on the same noisy modular-arithmetic data, and frequency filtration
of its unembedding (the paper's Appendix D.2, Table 3).

The model follows Nanda et al.'s grokking Transformer ("Progress measures for grokking", ICLR
2023), without LayerNorm:

* input ``a b =``: three tokens, the operands 0..P-1 and ``=`` as token P;
* token embedding ``W_E`` (P+1, d_model) plus learned position embedding ``W_pos`` (3, d_model);
* one causal attention layer with ``n_heads`` heads (d_head = d_model / n_heads, no biases) and
  one ReLU MLP (``W_in``, ``b_in``, ``W_out``, ``b_out``), each added to the residual stream;
* the unembedding ``W_U`` (d_model, P), read out at the last position (``=``); no output bias.

Only the last position's output is ever read, and in a one-layer model it depends on the other
positions only through its attention, so the forward pass computes the last position alone
(exactly the same function as the full causal model). The query of ``=`` is the same for every
pair, and keys and values are looked up per token, so attention costs almost nothing; the MLP
dominates.

Several runs that share the architecture, data split and number of steps train together as one
stacked tensor program (every parameter has a leading run axis; AdamW is elementwise with a
learning rate and weight decay per run, so each run trains as it would alone). On a CPU training
uses one thread (see :func:`train_batch`).

*Store.* Trained runs are cached under ``memgen.store.default_root() / "transformers"`` (so
``MEMGEN_STORE`` moves them too), one checksummed file per run named by
:meth:`TransformerConfig.key`; the filtration settings are not part of the key, so changing
``n_keep`` never retrains.

*Data.* :func:`memgen.tasks.make_dataset` of the matching :class:`~memgen.configs.RunConfig`
gives the split, the (noisy) training labels and the clean/noisy masks, so the Transformer sees
exactly the pairs and labels a two-layer run with the same task, P, split, noise and seed sees.

*Frequency filtration (FF) of the unembedding.* Each row of ``W_U`` (one residual direction,
a vector over the P output tokens) is read in the task's Fourier frame
(:func:`memgen.fourier.frame_order`: tokens 0..P-1, or the discrete-log order for ``mul``, length
n = P or P-1) and transformed with ``numpy.fft.rfft``. The power of frequency k = 1..n//2 is
summed over all rows; the ``n_keep`` frequencies with the most total power are kept (both their
cos and sin parts, i.e. the bins +-k), every other non-DC frequency is zeroed. The DC term adds
the same number to every logit, so it never changes a prediction; it is kept by default
(``keep_dc``) so the filtered logits differ from the raw ones only by the removed frequencies.
For ``mul``, the column of token 0 (no discrete log) is left as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import verdicts as vd
from .checkpoint import StoreError, atomic_save, checked_load
from .configs import DEVICES, ConfigError, RunConfig, _choice, _integer, _number, _plain_fields, content_key
from .fourier import frame_order
from .metrics import accuracies_of_predictions
from .tasks import Dataset, chance_level, make_dataset
from .train import resolve_device

#: Bumped whenever a change to this module changes training results (part of the store key).
TRANSFORMER_VERSION = 1

#: The parameter names of one run, in a fixed order.
PARAM_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")

#: Fields that do not change training (not part of the store key).
_NOT_TRAINING = ("n_keep", "keep_dc", "device")


@dataclass(frozen=True)
class TransformerConfig:
    """One Transformer run and the frequency filtration applied to it.

    The defaults are the ``book`` profile's (see :data:`PROFILES` for why). Validated on
    construction (task and p first, as in :class:`~memgen.configs.RunConfig`); numpy scalars are
    stored as the Python numbers they hold, so they give the same :meth:`key`.

    Parameters
    ----------
    task : {"add", "sub", "mul"}, default="add"
        The operation c = a ∘ b mod p.
    p : int, default=59
        Modulus (prime for ``mul``).
    train_frac : float, default=0.8
        Fraction of the p**2 pairs used for training.
    split_seed : int, default=0
        Seed of the train/test split (the same split as a two-layer run with this seed).
    noise : float, default=0.1
        Fraction α of corrupted training labels, in [0, 1).
    noise_mode : {"wrong", "any", "symmetric"}, default="wrong"
        How labels are corrupted (see :class:`memgen.configs.RunConfig`).
    seed : int, default=0
        Seed of the label noise and of the initialisation.
    d_model : int, default=32
        Width of the residual stream.
    n_heads : int, default=4
        Attention heads; must divide ``d_model``.
    d_mlp : int, default=128
        Hidden width of the ReLU MLP.
    lr : float, default=1e-2
        AdamW learning rate.
    weight_decay : float, default=1.0
        AdamW decoupled weight decay (Nanda et al. use 1.0).
    beta1, beta2 : float, default=0.9, 0.98
        AdamW betas.
    steps : int, default=1000
        Full-batch optimizer steps.
    n_keep : int, default=5
        Frequencies of ``W_U`` kept by the filtration, 1 <= n_keep <= n // 2 (n = p, or p - 1
        for ``mul``). Not part of the run's identity: changing it never retrains.
    keep_dc : bool, default=True
        Keep the DC term of ``W_U`` (it never changes a prediction). Not part of the identity.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; not part of the identity.
    """

    task: str = "add"
    p: int = 59
    train_frac: float = 0.8
    split_seed: int = 0
    noise: float = 0.1
    noise_mode: str = "wrong"
    seed: int = 0
    d_model: int = 32
    n_heads: int = 4
    d_mlp: int = 128
    lr: float = 1e-2
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    steps: int = 1000
    n_keep: int = 5
    keep_dc: bool = True
    device: str = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        _plain_fields(self)  # numpy scalars count as the Python values they hold
        self.run_config()  # task and p first, then split, noise, noise_mode, seed: as in RunConfig
        _integer("d_model", self.d_model, 1)
        _integer("n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise ConfigError(f"n_heads={self.n_heads!r} is not allowed with d_model={self.d_model}; "
                              "it must divide d_model")
        _integer("d_mlp", self.d_mlp, 1)
        if _number("lr", self.lr) <= 0:
            raise ConfigError(f"lr={self.lr!r} is not allowed; it must be > 0")
        if _number("weight_decay", self.weight_decay) < 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} is not allowed; it must be >= 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= _number(name, getattr(self, name)) < 1.0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; it must lie in [0, 1)")
        _integer("steps", self.steps, 1)
        validate_n_keep(self.n_keep, self.task, self.p)
        if not isinstance(self.keep_dc, bool):
            raise ConfigError(f"keep_dc={self.keep_dc!r} is not allowed; use True or False")
        _choice("device", self.device, DEVICES)

    def run_config(self) -> RunConfig:
        """The :class:`RunConfig` whose dataset this run trains on (its model fields unused).

        Returns
        -------
        RunConfig
            Same task, p, split, noise, noise mode and seed; width 1 and 1 step.
        """
        return RunConfig(task=self.task, p=self.p, train_frac=self.train_frac, split_seed=self.split_seed,
                         noise=self.noise, noise_mode=self.noise_mode, seed=self.seed, width=1, steps=1)

    @property
    def n_freq(self) -> int:
        """Number of non-DC frequencies in the task's frame: n // 2."""
        return frame_size(self.task, self.p) // 2

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (JSON-serialisable).

        Returns
        -------
        dict
            Field name to value, every field.
        """
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that determine training, as JSON-ready floats/ints, plus the code version.

        Returns
        -------
        dict
            Every field but ``n_keep``, ``keep_dc`` and ``device``, plus ``transformer_version``
            (:data:`TRANSFORMER_VERSION`).
        """
        d = self.to_dict()
        for k in _NOT_TRAINING:
            d.pop(k)
        for k in ("train_frac", "noise", "lr", "weight_decay", "beta1", "beta2"):
            d[k] = float(d[k])
        d["transformer_version"] = TRANSFORMER_VERSION
        return d

    def key(self) -> str:
        """A stable content hash of the training identity (20 hex digits).

        Returns
        -------
        str
            The first 20 hex digits of the SHA-256 of :meth:`identity` as sorted JSON.
        """
        return content_key(self.identity())

    def batch_key(self) -> tuple:
        """Fields that must agree for runs to train as one stacked batch.

        Returns
        -------
        tuple
            Sorted (name, value) pairs of :meth:`identity` without ``noise``, ``noise_mode``,
            ``seed``, ``lr`` and ``weight_decay`` (runs may differ in those).
        """
        d = self.identity()
        for k in ("noise", "noise_mode", "seed", "lr", "weight_decay"):
            d.pop(k)
        return tuple(sorted(d.items()))

    def replace(self, **changes: Any) -> TransformerConfig:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes : Any
            Field names and their new values.

        Returns
        -------
        TransformerConfig
            The new config.
        """
        return dataclasses.replace(self, **changes)

    def label(self) -> str:
        """A short human-readable description.

        Returns
        -------
        str
            Task, p, d_model, heads, d_mlp, noise and seed.
        """
        return (f"{self.task} p={self.p} d_model={self.d_model} heads={self.n_heads} d_mlp={self.d_mlp} "
                f"noise={self.noise:g} seed={self.seed}")


def frame_size(task: str, p: int) -> int:
    """Length n of the Fourier frame over the output tokens: p, or p - 1 for ``mul``.

    Parameters
    ----------
    task : str
        The operation.
    p : int
        The modulus.

    Returns
    -------
    int
        n.
    """
    return p - 1 if task == "mul" else p


def validate_n_keep(n_keep: Any, task: str, p: int) -> None:
    """Validate a number of kept frequencies: an integer in [1, n // 2].

    Parameters
    ----------
    n_keep : int
        Number of kept non-DC frequencies.
    task : str
        The operation (sets n, see :func:`frame_size`).
    p : int
        The modulus.

    Raises
    ------
    ConfigError
        When ``n_keep`` is not an integer in [1, n // 2].
    """
    top = frame_size(task, p) // 2
    if isinstance(n_keep, bool) or not isinstance(n_keep, int) or not 1 <= n_keep <= top:
        raise ConfigError(f"n_keep={n_keep!r} is not allowed; it must be an integer in [1, {top}] "
                          f"(the non-DC frequencies of task={task!r}, p={p})")


# ---------------------------------------------------------------------------- profiles
#: Per-profile defaults (fields of :class:`TransformerConfig`) and the chapter's grids: ``noises``
#: (the α sweep, one seed each), ``seeds`` (at the main α) and ``n_keeps`` (the filtration sweep).
#:
#: ``book`` was chosen on the 2-core CPU: at train fraction 0.5 this small model memorizes the
#: noisy labels and never forms the rule within a few thousand steps (test accuracy near chance at
#: α = 0.2), so the train fraction is 0.8 (a follow-up by the paper's group uses 0.8); α = 0.1
#: and 1000 steps at lr 1e-2 give a raw network that memorizes every noisy label and still
#: generalizes partly, as in the paper's table. ``paper`` is Nanda et al.'s architecture and
#: optimizer at P = 113 with the paper's 20 kept frequencies; it needs a GPU and was not run on
#: the machine these defaults were chosen on.
PROFILES: dict[str, dict[str, Any]] = {
    "test": dict(config=dict(p=23, train_frac=0.8, d_model=32, n_heads=4, d_mlp=128, lr=1e-2,
                             weight_decay=1.0, steps=300, n_keep=3, noise=0.1),
                 noises=(0.0, 0.1, 0.3), seeds=(0, 1, 2), n_keeps=(1, 2, 3, 5, 8, 11)),
    "book": dict(config=dict(p=59, train_frac=0.8, d_model=32, n_heads=4, d_mlp=128, lr=1e-2,
                             weight_decay=1.0, steps=1000, n_keep=5, noise=0.1),
                 noises=(0.0, 0.1, 0.2, 0.3), seeds=(0, 1, 2), n_keeps=(1, 2, 3, 5, 8, 12, 20, 29)),
    "paper": dict(config=dict(p=113, train_frac=0.8, d_model=128, n_heads=4, d_mlp=512, lr=1e-3,
                              weight_decay=1.0, steps=20_000, n_keep=20, noise=0.1),
                  noises=(0.0, 0.1, 0.2, 0.3, 0.4), seeds=(0, 1, 2),
                  n_keeps=(1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 56)),
}
PROFILES["paper20k"] = PROFILES["paper"]


def profile_config(profile: str, **overrides: Any) -> TransformerConfig:
    """The profile's :class:`TransformerConfig`, with ``overrides`` (None means the default).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}
        A key of :data:`PROFILES`.
    **overrides : Any
        TransformerConfig fields; ``None`` values mean "use the profile default". The profile's
        ``n_keep`` is capped at the number of frequencies of ``p`` unless given.

    Returns
    -------
    TransformerConfig
        The validated config.

    Raises
    ------
    ConfigError
        When the profile is unknown, an override is not a field, or a value is not allowed.
    """
    _choice("profile", profile, tuple(PROFILES))
    fields = dict(PROFILES[profile]["config"])
    given = {k: v for k, v in overrides.items() if v is not None}
    fields.update(given)
    names = {f.name for f in dataclasses.fields(TransformerConfig)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ConfigError(f"unknown transformer parameter(s) {unknown}; allowed: {sorted(names)}")
    if "n_keep" not in given and isinstance(fields.get("p"), int) and fields["p"] >= 2:
        # the profile's n_keep, capped at the frequencies a smaller p has
        fields["n_keep"] = max(1, min(fields["n_keep"], frame_size(fields.get("task", "add"), fields["p"]) // 2))
    return TransformerConfig(**fields)


# ---------------------------------------------------------------------------- the model
def init_params(config: TransformerConfig) -> dict[str, torch.Tensor]:
    """Initial parameters of one run (float32, CPU), seeded by ``config.seed``.

    Gaussian, as in Nanda et al.: std 1/sqrt(d_model) for the embeddings and for every matrix
    that reads the residual stream, 1/sqrt(d_head * n_heads) for ``W_O``, 1/sqrt(d_mlp) for
    ``W_out``, 1/sqrt(p) for ``W_U``; biases zero.

    Parameters
    ----------
    config : TransformerConfig
        The run; its p, d_model, n_heads, d_mlp and seed are used.

    Returns
    -------
    dict of str to torch.Tensor
        One tensor per name in :data:`PARAM_NAMES`, without a run axis.
    """
    c = config
    g = torch.Generator().manual_seed(int(c.seed) * 1_000_003 + 12345)
    d, h, dh, m, p = c.d_model, c.n_heads, c.d_model // c.n_heads, c.d_mlp, c.p

    def randn(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    return {
        "W_E": randn(p + 1, d, std=d**-0.5), "W_pos": randn(3, d, std=d**-0.5),
        "W_Q": randn(h, d, dh, std=d**-0.5), "W_K": randn(h, d, dh, std=d**-0.5),
        "W_V": randn(h, d, dh, std=d**-0.5), "W_O": randn(h, dh, d, std=(h * dh) ** -0.5),
        "W_in": randn(d, m, std=d**-0.5), "b_in": torch.zeros(m),
        "W_out": randn(m, d, std=m**-0.5), "b_out": torch.zeros(d),
        "W_U": randn(d, p, std=p**-0.5),
    }


def residual(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The residual stream at the last position (``=``) for pairs (a, b) of a stack of runs.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters: each has a leading run axis R (see :data:`PARAM_NAMES`).
    a, b : torch.Tensor
        (N,) operands, shared by all runs.

    Returns
    -------
    torch.Tensor
        (R, N, d_model); the logits are ``residual @ W_U``.
    """
    W_E, pos = params["W_E"], params["W_pos"]
    p1 = W_E.shape[1]
    dh = params["W_Q"].shape[3]
    eq = W_E[:, p1 - 1] + pos[:, 2]  # (R, d): the "=" token at position 2
    x0 = W_E[:, :p1 - 1] + pos[:, 0, None]  # (R, P, d): every operand token at position 0
    x1 = W_E[:, :p1 - 1] + pos[:, 1, None]
    q = torch.einsum("rd,rhde->rhe", eq, params["W_Q"])  # (R, H, dh): the same for every pair
    k0, k1 = (torch.einsum("rtd,rhde->rthe", x, params["W_K"]) for x in (x0, x1))  # (R, P, H, dh)
    v0, v1 = (torch.einsum("rtd,rhde->rthe", x, params["W_V"]) for x in (x0, x1))
    k2 = torch.einsum("rd,rhde->rhe", eq, params["W_K"])
    v2 = torch.einsum("rd,rhde->rhe", eq, params["W_V"])
    scale = dh**-0.5
    # per-token tables (score of "=" attending to the token, then its value), gathered once per operand
    g0 = torch.cat([(k0 * q[:, None]).sum(-1, keepdim=True) * scale, v0], -1)[:, a]  # (R, N, H, 1 + dh)
    g1 = torch.cat([(k1 * q[:, None]).sum(-1, keepdim=True) * scale, v1], -1)[:, b]
    s0, s1 = g0[..., 0], g1[..., 0]  # (R, N, H)
    s2 = (k2 * q).sum(-1)[:, None] * scale  # (R, 1, H)
    # softmax over the three positions, written out (torch's softmax is slow on a last axis of 3)
    top = torch.maximum(torch.maximum(s0, s1), s2).detach()
    e0, e1, e2 = (s0 - top).exp(), (s1 - top).exp(), (s2 - top).exp()
    z = ((e0[..., None] * g0[..., 1:] + e1[..., None] * g1[..., 1:] + e2[..., None] * v2[:, None])
         / (e0 + e1 + e2)[..., None])  # (R, N, H, dh)
    attn_out = torch.einsum("rnhe,rhed->rnd", z, params["W_O"])
    res = eq[:, None] + attn_out
    hidden = torch.relu(torch.baddbmm(params["b_in"][:, None], res, params["W_in"]))
    return res + torch.baddbmm(params["b_out"][:, None], hidden, params["W_out"])


def logits(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor,
           W_U: torch.Tensor | None = None) -> torch.Tensor:
    """(R, N, P) logits of pairs (a, b); ``W_U`` (R, d_model, P) replaces the unembedding.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters, each with a leading run axis R.
    a, b : torch.Tensor
        (N,) operands, shared by all runs.
    W_U : torch.Tensor or None, default=None
        (R, d_model, P) unembedding to use instead of ``params["W_U"]``.

    Returns
    -------
    torch.Tensor
        (R, N, P) logits read out at the last position.
    """
    return residual(params, a, b) @ (params["W_U"] if W_U is None else W_U)


# ---------------------------------------------------------------------------- filtration
def unembed_spectrum(W_U: np.ndarray, task: str) -> np.ndarray:
    """Total power of ``W_U`` (d_model, p) per frequency k = 0..n//2 in the task's frame.

    Parameters
    ----------
    W_U : numpy.ndarray
        (d_model, p) unembedding of one run.
    task : str
        The operation (sets the frame).

    Returns
    -------
    numpy.ndarray
        (n//2 + 1,) power summed over the rows; index 0 is DC.
    """
    order = frame_order(task, W_U.shape[1])
    return (np.abs(np.fft.rfft(np.asarray(W_U, dtype=np.float64)[:, order], axis=1)) ** 2).sum(0)


def kept_frequencies(W_U: np.ndarray, task: str, n_keep: int) -> np.ndarray:
    """The ``n_keep`` non-DC frequencies of ``W_U`` with the most total power (sorted).

    Parameters
    ----------
    W_U : numpy.ndarray
        (d_model, p) unembedding of one run.
    task : str
        The operation (sets the frame).
    n_keep : int
        How many frequencies, in [1, n // 2].

    Returns
    -------
    numpy.ndarray
        The kept frequencies in 1..n//2, ascending.

    Raises
    ------
    ConfigError
        When ``n_keep`` is not allowed.
    """
    p = W_U.shape[1]
    validate_n_keep(n_keep, task, p)
    power = unembed_spectrum(W_U, task)[1:]
    return np.sort(1 + np.argsort(-power, kind="stable")[:n_keep])


def filter_unembed(W_U: np.ndarray | torch.Tensor, task: str, n_keep: int,
                   keep_dc: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Frequency filtration of the unembedding.

    Parameters
    ----------
    W_U : array of shape (d_model, p)
        The unembedding of one run.
    task : {"add", "sub", "mul"}
        Sets the frame (discrete-log order for ``mul``; token 0's column is left unchanged).
    n_keep : int
        Number of non-DC frequencies kept (the top ones by power summed over the rows).
    keep_dc : bool, default=True
        Keep each row's mean over the frame (it shifts all logits equally).

    Returns
    -------
    W_U_filtered : numpy.ndarray
        (d_model, p) float32: only the kept frequencies (and DC) remain.
    kept : numpy.ndarray
        The kept frequencies, sorted.
    """
    W = np.asarray(W_U.detach().cpu() if isinstance(W_U, torch.Tensor) else W_U, dtype=np.float64)
    p = W.shape[1]
    kept = kept_frequencies(W, task, n_keep)
    order = frame_order(task, p)
    n = len(order)
    spec = np.fft.rfft(W[:, order], axis=1)
    mask = np.zeros(n // 2 + 1, dtype=bool)
    mask[kept] = True
    mask[0] = keep_dc
    out = W.copy()
    out[:, order] = np.fft.irfft(spec * mask, n=n, axis=1)
    return out.astype(np.float32), kept


# ---------------------------------------------------------------------------- runs
@dataclass
class TransformerRun:
    """A trained Transformer: its config, parameters (one run, no run axis), history and metadata.

    Parameters
    ----------
    config : TransformerConfig
        The run's configuration.
    params : dict of str to torch.Tensor
        Its parameters by :data:`PARAM_NAMES`, without a run axis.
    history : dict of str to list
        ``step``, ``loss`` and accuracies before and after filtration (``ff_`` prefix) at
        :func:`history_steps`.
    meta : dict
        Facts about the training (seconds, batch size, device, torch version).
    """

    config: TransformerConfig
    params: dict[str, torch.Tensor]
    history: dict[str, list]
    meta: dict[str, Any]

    @property
    def data(self) -> Dataset:
        """The run's dataset (built on first use, then cached)."""
        if "_data" not in self.__dict__:
            self.__dict__["_data"] = make_dataset(self.config.run_config())
        return self.__dict__["_data"]

    def stacked(self) -> dict[str, torch.Tensor]:
        """The parameters with a run axis of length 1.

        Returns
        -------
        dict of str to torch.Tensor
            Each parameter with a leading axis of length 1.
        """
        return {k: v[None] for k, v in self.params.items()}

    def predict(self, W_U: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """Predicted class of every pair (p*p,), optionally with a replaced unembedding.

        Parameters
        ----------
        W_U : numpy.ndarray or torch.Tensor or None, default=None
            (d_model, p) unembedding to use instead of the trained one.

        Returns
        -------
        numpy.ndarray
            (p*p,) predicted classes in row-major order.
        """
        d = self.data
        a, b = torch.as_tensor(d.a), torch.as_tensor(d.b)
        Wu = None if W_U is None else torch.as_tensor(np.asarray(W_U), dtype=torch.float32)[None]
        with torch.no_grad():
            return logits(self.stacked(), a, b, Wu)[0].argmax(-1).numpy()

    def evaluate(self, W_U: np.ndarray | torch.Tensor | None = None) -> dict[str, float]:
        """Accuracies (train, clean, noisy, noisy_true, test) with the raw or a replaced ``W_U``.

        Parameters
        ----------
        W_U : numpy.ndarray or torch.Tensor or None, default=None
            (d_model, p) unembedding to use instead of the trained one.

        Returns
        -------
        dict of str to float
            Each name in :data:`~memgen.metrics.METRICS` to its accuracy.
        """
        return accuracies_of_predictions(self.predict(W_U), self.data)

    def filtration(self, n_keep: int | None = None, keep_dc: bool | None = None) -> dict[str, Any]:
        """Accuracies before and after frequency filtration of ``W_U``.

        Parameters
        ----------
        n_keep : int or None, default=None
            Kept frequencies (None: the config's ``n_keep``).
        keep_dc : bool or None, default=None
            Keep DC (None: the config's ``keep_dc``).

        Returns
        -------
        dict
            ``before`` and ``after`` (accuracy dicts), ``kept`` (list of int), ``n_keep``.
        """
        n_keep = self.config.n_keep if n_keep is None else n_keep
        keep_dc = self.config.keep_dc if keep_dc is None else keep_dc
        W_f, kept = filter_unembed(self.params["W_U"], self.config.task, n_keep, keep_dc)
        return {"before": self.evaluate(), "after": self.evaluate(W_f), "kept": [int(k) for k in kept],
                "n_keep": n_keep}

    def sweep_n_keep(self, n_keeps: list[int] | tuple[int, ...]) -> list[dict[str, Any]]:
        """Accuracies after filtration for each number of kept frequencies (one residual pass).

        Parameters
        ----------
        n_keeps : list of int or tuple of int
            The numbers of kept frequencies (DC as the config's ``keep_dc``).

        Returns
        -------
        list of dict
            Per ``n_keep``: ``n_keep``, ``kept`` (list of int) and the accuracies.
        """
        d = self.data
        with torch.no_grad():
            res = residual(self.stacked(), torch.as_tensor(d.a), torch.as_tensor(d.b))[0]
        rows = []
        for k in n_keeps:
            W_f, kept = filter_unembed(self.params["W_U"], self.config.task, int(k), self.config.keep_dc)
            pred = (res @ torch.as_tensor(W_f)).argmax(-1).numpy()
            rows.append({"n_keep": int(k), "kept": [int(x) for x in kept], **accuracies_of_predictions(pred, d)})
        return rows


def report(run: TransformerRun, n_keep: int | None = None) -> dict[str, Any]:
    """The CLI's JSON object: config, ``before``, ``after`` (accuracies), kept frequencies, seconds.

    Parameters
    ----------
    run : TransformerRun
        The trained run.
    n_keep : int or None, default=None
        Kept frequencies (None: the config's ``n_keep``).

    Returns
    -------
    dict
        ``config``, ``before``, ``after``, ``kept``, ``seconds`` and ``device``.
    """
    ff = run.filtration(n_keep)
    return {"config": run.config.to_dict(), "before": ff["before"], "after": ff["after"], "kept": ff["kept"],
            "seconds": run.meta.get("seconds"), "device": run.meta.get("device")}


# ---------------------------------------------------------------------------- training
def _progress(total: int, desc: str, enabled: bool | None):
    mode = os.environ.get("MEMGEN_PROGRESS", "auto")
    if enabled is False or mode == "off" or (enabled is None and total < 2000):
        return None
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, mininterval=1.0)


def history_steps(steps: int, points: int = 40) -> list[int]:
    """The steps at which training history is recorded: 0, about ``points`` more, and the last.

    Parameters
    ----------
    steps : int
        The run's number of optimizer steps.
    points : int, default=40
        Number of evenly spaced intervals over 0..steps.

    Returns
    -------
    list of int
        Sorted distinct steps.
    """
    return sorted({0, steps, *np.linspace(0, steps, points + 1).round().astype(int).tolist()})


class _AdamW:
    """AdamW on stacked parameters with a learning rate and weight decay per run (leading axis).

    The same update as ``torch.optim.AdamW`` (eps 1e-8, bias-corrected moments, decoupled decay
    ``p *= 1 - lr * wd`` before the Adam step), so runs with different lr / wd train together.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: list[float], wd: list[float], beta1: float,
                 beta2: float, eps: float = 1e-8) -> None:
        dev = next(iter(params.values())).device
        self.lr = torch.tensor(lr, dtype=torch.float32, device=dev)
        self.decay = 1 - self.lr * torch.tensor(wd, dtype=torch.float32, device=dev)
        self.b1, self.b2, self.eps, self.t = beta1, beta2, eps, 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, torch.Tensor], grads: tuple[torch.Tensor, ...]) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        with torch.no_grad():
            for (k, p), g in zip(params.items(), grads):
                shape = (-1,) + (1,) * (p.dim() - 1)
                m, v = self.m[k], self.v[k]
                m.mul_(self.b1).add_(g, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                p.mul_(self.decay.view(shape))
                p.sub_(self.lr.view(shape) * (m / c1) / ((v / c2).sqrt_().add_(self.eps)))


@contextlib.contextmanager
def _cpu_threads(device: torch.device) -> Iterator[None]:
    """Train on one CPU thread, restoring torch's setting afterwards (no-op on a GPU).

    These models are small: torch's thread pool costs more than it gains at this size, and far
    more when the cores are shared (5x slower wall time measured with 2 threads on a busy
    2-core machine). One thread also keeps results independent of the core count.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_batch(configs: list[TransformerConfig], *, progress: bool | None = None) -> list[TransformerRun]:
    """Train runs with equal :meth:`TransformerConfig.batch_key` together, full batch, AdamW.

    Parameters
    ----------
    configs : list of TransformerConfig
        The runs (they may differ only in ``noise``, ``noise_mode``, ``seed``, ``lr``,
        ``weight_decay``, ``n_keep`` and ``keep_dc``).
    progress : bool or None, default=None
        Show a tqdm bar (None: only for long batches; ``MEMGEN_PROGRESS=off|text|auto``).

    Returns
    -------
    list of TransformerRun
        In the order of ``configs``. The history holds, at :func:`history_steps`, the training
        loss and the accuracies before and after filtration (``ff_`` prefix, the config's
        ``n_keep``).

    Raises
    ------
    ConfigError
        When a run's loss stops being finite (its learning rate is too large).

    Notes
    -----
    On a CPU the loop runs on one thread (torch's setting is restored afterwards).
    """
    if not configs:
        return []
    c0 = configs[0]
    if any(c.batch_key() != c0.batch_key() for c in configs):
        raise ValueError("train_batch needs configs that share a batch key (see TransformerConfig.batch_key)")
    device = resolve_device(c0.device)
    datas = [make_dataset(c.run_config()) for c in configs]
    d0 = datas[0]
    a_all, b_all = torch.as_tensor(d0.a, device=device), torch.as_tensor(d0.b, device=device)
    tr = torch.as_tensor(d0.train_idx, device=device)
    a, b = a_all[tr], b_all[tr]
    y = torch.stack([torch.as_tensor(d.train_labels) for d in datas]).to(device)  # (R, N)
    inits = [init_params(c) for c in configs]
    params = {k: torch.stack([i[k] for i in inits]).to(device).requires_grad_(True) for k in PARAM_NAMES}
    opt = _AdamW(params, [c.lr for c in configs], [c.weight_decay for c in configs], c0.beta1, c0.beta2)
    R, P = len(configs), c0.p
    marks = set(history_steps(c0.steps))
    hist: dict[str, list] = {"step": [], "loss": []}
    bar = _progress(R * c0.steps, f"training {R} transformer(s) p={P}", progress)
    t0 = time.perf_counter()
    with _cpu_threads(device):
        for step in range(c0.steps + 1):
            out = logits(params, a, b)
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, P), y.reshape(-1), reduction="none")
            per_run = loss.view(R, -1).mean(1)
            if step in marks:
                hist["step"].append(step)
                hist["loss"].append(per_run.detach().cpu().tolist())
                _record(hist, params, configs, datas, a_all, b_all)
            if step == c0.steps:
                break
            if not torch.isfinite(per_run).all():
                bad = configs[int(torch.nonzero(~torch.isfinite(per_run))[0])]
                raise ConfigError(f"lr={bad.lr!r} is not allowed here: the loss of {bad.label()} diverged at "
                                  f"step {step}; use a smaller lr")
            grads = torch.autograd.grad(per_run.sum(), list(params.values()))
            opt.step(params, grads)
            if bar is not None:
                bar.update(R)
    if bar is not None:
        bar.close()
    meta = {"seconds": time.perf_counter() - t0, "batch_size": R, "device": str(device),
            "torch": str(torch.__version__)}
    runs = []
    for r, c in enumerate(configs):
        h = {"step": list(hist["step"])}
        h.update({k: [float(v[r]) for v in vals] for k, vals in hist.items() if k != "step"})
        ps = {k: v[r].detach().cpu().clone() for k, v in params.items()}
        run = TransformerRun(c, ps, h, dict(meta))
        run.__dict__["_data"] = datas[r]
        runs.append(run)
    return runs


def _record(hist: dict[str, list], params: dict[str, torch.Tensor], configs: list[TransformerConfig],
            datas: list[Dataset], a_all: torch.Tensor, b_all: torch.Tensor) -> None:
    """Append accuracies before and after filtration (one row per run) to ``hist``."""
    with torch.no_grad():
        res = residual({k: v.detach() for k, v in params.items()}, a_all, b_all)  # (R, P*P, d)
        W_U = params["W_U"].detach()
        before = (res @ W_U).argmax(-1).cpu().numpy()
        filt = np.stack([filter_unembed(W_U[r], c.task, c.n_keep, c.keep_dc)[0] for r, c in enumerate(configs)])
        after = (res @ torch.as_tensor(filt, device=res.device)).argmax(-1).cpu().numpy()
    rows = [(accuracies_of_predictions(before[r], d), accuracies_of_predictions(after[r], d))
            for r, d in enumerate(datas)]
    for k in ("train_acc", "clean_acc", "noisy_acc", "test_acc"):
        hist.setdefault(k, []).append([bf[k] for bf, _ in rows])
        hist.setdefault("ff_" + k, []).append([af[k] for _, af in rows])


# ---------------------------------------------------------------------------- the store
def store_root(root: str | os.PathLike | None = None) -> Path:
    """Where trained Transformers live: ``root`` or ``memgen.store.default_root() / "transformers"``.

    Parameters
    ----------
    root : str or os.PathLike or None, default=None
        An explicit folder; None: the default.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    if root is not None:
        return Path(root)
    from .store import default_root

    return default_root() / "transformers"


def store_path(config: TransformerConfig, root: str | os.PathLike | None = None) -> Path:
    """The store file of ``config``: ``<root>/<key[:2]>/<key>.pt``.

    Parameters
    ----------
    config : TransformerConfig
        The run.
    root : str or os.PathLike or None, default=None
        Store folder (None: :func:`store_root`).

    Returns
    -------
    pathlib.Path
        Where its entry is (or would be) stored.
    """
    key = config.key()
    return store_root(root) / key[:2] / f"{key}.pt"


def load(config: TransformerConfig, root: str | os.PathLike | None = None) -> TransformerRun | None:
    """The stored run of ``config`` or None (a damaged entry is removed and reported as missing).

    Parameters
    ----------
    config : TransformerConfig
        The run.
    root : str or os.PathLike or None, default=None
        Store folder (None: :func:`store_root`).

    Returns
    -------
    TransformerRun or None
        The stored run, or None when there is no intact entry.
    """
    path = store_path(config, root)
    if not path.exists():
        return None
    try:
        d = checked_load(path)
    except StoreError:
        path.unlink(missing_ok=True)
        return None
    return TransformerRun(config, d["params"], d["history"], d["meta"])


def save(run: TransformerRun, root: str | os.PathLike | None = None) -> Path:
    """Store a trained run atomically, keyed by its config's hash.

    Parameters
    ----------
    run : TransformerRun
        The trained run.
    root : str or os.PathLike or None, default=None
        Store folder (None: :func:`store_root`).

    Returns
    -------
    pathlib.Path
        The entry's file.
    """
    path = store_path(run.config, root)
    atomic_save(path, {"config": run.config.identity(), "params": run.params, "history": run.history,
                       "meta": run.meta})
    return path


def train_or_load(configs: TransformerConfig | list[TransformerConfig], *, root: str | os.PathLike | None = None,
                  progress: bool | None = None) -> Any:
    """Stored runs where they exist; the rest trained (batched by batch key) and stored.

    Parameters
    ----------
    configs : TransformerConfig or list of TransformerConfig
        One config (returns one run) or several (returns a list, in order).
    root : str or path-like or None, default=None
        Store folder (None: :func:`store_root`).
    progress : bool or None, default=None
        Progress bar while training (see :func:`train_batch`).

    Returns
    -------
    TransformerRun or list of TransformerRun
        One run for one config, else a list in the order of ``configs``.
    """
    single = isinstance(configs, TransformerConfig)
    cs = [configs] if single else list(configs)
    out: list[TransformerRun | None] = [None] * len(cs)
    todo: dict[tuple, list[int]] = {}
    for i, c in enumerate(cs):
        run = load(c, root)
        if run is None:
            todo.setdefault(c.batch_key(), []).append(i)
        else:
            out[i] = run
    for idx in todo.values():
        uniq: dict[str, int] = {}
        for i in idx:
            uniq.setdefault(cs[i].key(), i)
        runs = train_batch([cs[i] for i in uniq.values()], progress=progress)
        by_key = {}
        for r in runs:
            save(r, root)
            by_key[r.config.key()] = r
        for i in idx:
            r = by_key[cs[i].key()]
            out[i] = r if r.config == cs[i] else TransformerRun(cs[i], r.params, r.history, r.meta)
    return out[0] if single else out


def summary(runs: list[TransformerRun], n_keep: int | None = None) -> dict[str, dict[str, float]]:
    """Mean, and half the range over runs (seeds), of each accuracy before and after filtration.

    Parameters
    ----------
    runs : list of TransformerRun
        The runs (one per seed).
    n_keep : int or None, default=None
        Kept frequencies (None: each config's ``n_keep``).

    Returns
    -------
    dict of str to dict
        ``{"before": {metric: mean, metric + "_spread": half-range}, "after": {...}}`` (NaN when
        no run has a finite value).
    """
    ffs = [r.filtration(n_keep) for r in runs]
    out: dict[str, dict[str, float]] = {}
    for side in ("before", "after"):
        out[side] = {}
        for k in ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc"):
            v = np.array([f[side][k] for f in ffs], dtype=float)
            fin = v[np.isfinite(v)]
            out[side][k] = float(fin.mean()) if fin.size else math.nan
            out[side][k + "_spread"] = float((fin.max() - fin.min()) / 2) if fin.size else math.nan
    return out


def sweep_configs(base: TransformerConfig, noises: Any = None, seeds: Any = None,
                  profile: str | None = None) -> list[TransformerConfig]:
    """The runs of the chapter: ``base.noise`` with every seed, every other α with the first seed.

    Parameters
    ----------
    base : TransformerConfig
        The main run (its ``noise`` is the α of the main table).
    noises : list of float or None, default=None
        The α grid (None: the profile's); ``base.noise`` is added when missing.
    seeds : list of int or None, default=None
        Seeds at the main α (None: the profile's); at least one.
    profile : str or None, default=None
        Whose grids to use when ``noises`` or ``seeds`` is None (None: "book").

    Returns
    -------
    list of TransformerConfig
        Sorted by α, then seed; all share a batch key, so they train as one batch.

    Raises
    ------
    ConfigError
        When ``noises`` or ``seeds`` is not a non-empty list, or a value is not allowed.
    """
    prof = PROFILES[profile or "book"]
    noises = list(prof["noises"]) if noises is None else noises
    seeds = list(prof["seeds"]) if seeds is None else seeds
    for name, v in (("noises", noises), ("seeds", seeds)):
        if not isinstance(v, (list, tuple)) or not v:
            raise ConfigError(f"{name}={v!r} is not allowed; give a non-empty list")
    alphas = sorted({float(base.noise), *(_number("noises", a) for a in noises)})
    out = []
    for a in alphas:
        for s in (seeds if a == base.noise else seeds[:1]):
            out.append(base.replace(noise=a, seed=s))
    return out


def keep_table(runs: list[TransformerRun], n_keeps: Any) -> list[dict[str, Any]]:
    """Accuracies after filtration for every run and number of kept frequencies.

    Parameters
    ----------
    runs : list of TransformerRun
        The runs.
    n_keeps : list of int
        Numbers of kept frequencies (values above a run's ``n_freq`` are dropped).

    Returns
    -------
    list of dict
        One row per (run, n_keep): ``noise``, ``seed``, ``n_keep``, ``kept``, the accuracies
        after filtration (``train_acc``, ``clean_acc``, ``noisy_acc``, ``noisy_true_acc``,
        ``test_acc``) and before it (the same names with a ``before_`` prefix).
    """
    rows = []
    for run in runs:
        ks = sorted({int(k) for k in n_keeps if 1 <= int(k) <= run.config.n_freq})
        before = {f"before_{k}": v for k, v in run.evaluate().items()}
        for row in run.sweep_n_keep(ks):
            rows.append({"noise": run.config.noise, "seed": run.config.seed, **row, **before})
    return rows


def judge(runs: list[TransformerRun], n_keep: int | None = None, settings: str = "") -> dict[str, Any]:
    """The chapter's verdicts on the paper's Table 3, from runs that differ only in their seed.

    Parameters
    ----------
    runs : list of TransformerRun
        The seeds of one setting (the same α); three or more for a claimed difference.
    n_keep : int or None, default=None
        Kept frequencies (None: each config's ``n_keep``).
    settings : str, default=""
        Where the numbers were measured, for the verdicts.

    Returns
    -------
    dict of str to Verdict
        As :func:`judge_filtration`, on each run's :meth:`TransformerRun.filtration`.
    """
    data = runs[0].data
    return judge_filtration([r.filtration(n_keep) for r in runs], n_train=len(data.train_idx),
                            n_test=len(data.test_idx), n_noisy=int(data.noisy.sum()), p=runs[0].config.p,
                            task=runs[0].config.task, settings=settings)


def judge_filtration(ffs: list[dict[str, Any]], *, n_train: int, n_test: int, n_noisy: int, p: int,
                     task: str = "add", settings: str = "") -> dict[str, Any]:
    """The chapter's verdicts from accuracies before and after filtration (trained or shipped runs).

    Parameters
    ----------
    ffs : list of dict
        One per seed: ``before`` and ``after`` accuracy dicts (:meth:`TransformerRun.filtration`,
        or a shipped record's).
    n_train, n_test, n_noisy : int
        Sizes of the training set, the test set and the noisy subset (the same for every seed).
    p : int
        The modulus.
    task : str, default="add"
        The operation; with ``p`` it sets the chance level the accuracies must exceed
        (:func:`memgen.tasks.chance_level`: 1/p, more for ``mul``).
    settings : str, default=""
        Where the numbers were measured, for the verdicts.

    Returns
    -------
    dict of str to Verdict
        ``memorized`` (noisy-label accuracy before FF at least 0.9 on every seed), ``test``
        (FF raises test accuracy, judged per seed: the gains after - before must exceed their
        range over seeds and the 95% sampling margin of the two mean accuracies, and the filtered
        test accuracy must be above chance), ``noisy`` (FF lowers the accuracy on the memorized
        labels), ``split`` (after FF, clean training labels are kept better than noisy ones) and
        ``test_unpaired`` (the ``test`` claim judged by :func:`memgen.verdicts.compare` on the two
        sides' seeds, for comparison). With no noisy labels every verdict is ``Not shown``.
    """
    n_clean, chance = n_train - n_noisy, chance_level(task, p)

    def side(s: str, k: str) -> np.ndarray:
        return np.array([f[s][k] for f in ffs], dtype=float)

    if n_noisy == 0:
        v = vd.undefined("FF of W_U removes memorization", "α = 0: there are no noisy labels", settings=settings)
        return {k: v for k, v in zip(("memorized", "test", "noisy", "split", "test_unpaired"), [v] * 5)}
    bt, at, bn, an, ac = (side("before", "test_acc"), side("after", "test_acc"), side("before", "noisy_acc"),
                          side("after", "noisy_acc"), side("after", "clean_acc"))
    gains = at - bt
    sampling = vd.proportion_margin(float(at.mean()), float(bt.mean()), n_test)
    test = vd.compare("FF of W_U raises test accuracy (per seed, the same network before and after)", gains, 0.0,
                      a_name="test gain (after - before FF)", b_name="no change", min_margin=sampling,
                      floor=(at, n_test, chance), settings=settings)
    test = dataclasses.replace(test, evidence=test.evidence + (
        f"; the margin is the larger of the gains' range over seeds ({vd.seed_range(gains):.3f}) and the 95% "
        f"sampling margin of the two test accuracies on {n_test} pairs ({sampling:.3f})"))
    return {
        "memorized": vd.judge_at_least("before FF the Transformer has memorized the noisy labels (at least 90%)",
                                       bn, n_noisy, 0.9, name="noisy-label accuracy before FF", settings=settings),
        "test": test,
        "noisy": vd.compare("FF lowers the accuracy on the memorized noisy labels", bn, an, a_name="noisy before FF",
                            b_name="noisy after FF", n=n_noisy, floor=(bn, n_noisy, chance), settings=settings),
        "split": vd.compare("after FF the clean training labels are kept far better than the noisy ones", ac, an,
                            a_name="clean after FF", b_name="noisy after FF", n=n_noisy,
                            floor=(ac, n_clean, chance), settings=settings),
        "test_unpaired": vd.compare("FF of W_U raises test accuracy (unpaired)", at, bt, a_name="test after FF",
                                    b_name="test before FF", n=n_test, floor=(at, n_test, chance),
                                    settings=settings),
    }
