"""Run configurations and named profiles.

A :class:`RunConfig` fully determines one training run: the data (task, modulus, split, label
noise), the model (width, activation, tying, bias, initialisation), the optimisation (optimizer,
learning rate, weight decay, loss, steps) and the seeds. It is validated on construction, frozen,
and hashable; :meth:`RunConfig.key` is the stable content hash that names the run in the store.

Profiles bundle defaults for the three settings the book runs in:

``test``
    tiny modulus and few steps, so that every chapter executes in seconds (unit tests, nbval);
``book``
    the CPU default: P = 59, widths up to 1025, a few thousand full-batch steps, chosen so the
    paper's effects show on a 2-core machine in minutes;
``paper``
    the paper's own settings (P = 113, widths up to 4097, AdamW lr 1e-3 / wd 0.1, 200k steps),
    meant for a GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

TASKS = ("add", "sub", "mul")
ACTIVATIONS = ("relu", "quadratic", "gelu", "reverse_relu")
NOISE_MODES = ("wrong", "any", "symmetric")
OPTIMIZERS = ("adamw", "adam", "sgd", "muon")
LOSSES = ("ce", "mse")
INITS = ("default", "doshi")
DEVICES = ("auto", "cpu", "cuda")

#: Bumped whenever a change to the training code changes results, so old store entries are
#: not reused for new code.
ENGINE_VERSION = 2


class ConfigError(ValueError):
    """A parameter value is not allowed. The message names the parameter and what is allowed."""


def is_prime(n: int) -> bool:
    """Return True when ``n`` is a prime number."""
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _integer(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a number")
    return float(value)


def validate_task(task: str, p: int) -> None:
    """Validate a task name and modulus together (multiplication needs a prime modulus)."""
    _choice("task", task, TASKS)
    _integer("p", p, 2)
    if task == "mul" and not is_prime(p):
        raise ConfigError(
            f"p={p} is not allowed for task='mul'; multiplication needs a prime p "
            "(the discrete-log frame needs a cyclic group Z_p^*), e.g. 23, 59, 97, 113"
        )


def validate_noise(noise: Any) -> float:
    """Validate a label-noise fraction: a number in [0, 1)."""
    noise = _number("noise", noise)
    if not 0.0 <= noise < 1.0:
        raise ConfigError(f"noise={noise!r} is not allowed; it must lie in [0, 1)")
    return noise


def validate_width(width: Any) -> None:
    """Validate a hidden width: an integer >= 1."""
    _integer("width", width, 1)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run.

    Parameters
    ----------
    task : {"add", "sub", "mul"}
        The operation: c = a + b, a - b or a * b (mod p).
    p : int
        Modulus (>= 2; prime for ``mul``).
    train_frac : float
        Fraction of the p**2 pairs used for training, in (0, 1). Open in the paper.
    split_seed : int
        Seed of the train/test split. Kept apart from ``seed`` so that runs differing only in
        ``seed`` share a split and can train as one batch.
    noise : float
        Fraction alpha of training samples whose label is corrupted, in [0, 1).
    noise_mode : {"wrong", "any", "symmetric"}
        ``wrong``: uniform over the p - 1 wrong classes (the paper); ``any``: uniform over all p
        classes (Doshi et al.; about 1/p of corrupted labels are accidentally right);
        ``symmetric``: like ``wrong`` but (a, b) and (b, a) get the same wrong label.
    width : int
        Hidden width M (the paper uses 2**k + 1).
    activation : {"relu", "quadratic", "gelu", "reverse_relu"}
        phi. ``reverse_relu`` is max(0, -x) (the paper's reading is open).
    tied : bool
        Tie the embeddings, U = V.
    bias : bool
        Use the output bias mu.
    init : {"default", "doshi"}
        ``default``: N(0, 1/p) for U, V and N(0, 1/M) for W (fan-in scaling); ``doshi``:
        N(0, (16 M)**(-2/3)) for all, as in Doshi et al.
    optimizer : {"adamw", "adam", "sgd", "muon"}
    lr, weight_decay : float
        Learning rate (> 0) and decoupled weight decay (>= 0).
    beta1, beta2 : float
        Adam betas (beta1 is the momentum for SGD and Muon).
    loss : {"ce", "mse"}
        Cross-entropy, or mean squared error against one-hot targets.
    steps : int
        Optimizer steps (= epochs when full batch).
    batch_size : int or None
        None for full batch (the paper), else the minibatch size.
    seed : int
        Seed of the label noise and of the initialisation.
    device : {"auto", "cpu", "cuda"}
        Where to train; not part of the run's identity.
    """

    task: str = "add"
    p: int = 59
    train_frac: float = 0.5
    split_seed: int = 0
    noise: float = 0.0
    noise_mode: str = "wrong"
    width: int = 257
    activation: str = "relu"
    tied: bool = False
    bias: bool = True
    init: str = "default"
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    loss: str = "ce"
    steps: int = 3000
    batch_size: int | None = None
    seed: int = 0
    device: str = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        validate_task(self.task, self.p)
        tf = _number("train_frac", self.train_frac)
        if not 0.0 < tf < 1.0:
            raise ConfigError(f"train_frac={self.train_frac!r} is not allowed; it must lie in (0, 1)")
        _integer("split_seed", self.split_seed, 0)
        validate_noise(self.noise)
        _choice("noise_mode", self.noise_mode, NOISE_MODES)
        if self.noise_mode == "symmetric" and self.task == "sub":
            raise ConfigError(
                "noise_mode='symmetric' is not allowed for task='sub'; (a, b) and (b, a) have "
                "different true labels there. Use 'wrong' or 'any'"
            )
        validate_width(self.width)
        _choice("activation", self.activation, ACTIVATIONS)
        for name in ("tied", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; use True or False")
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        if _number("lr", self.lr) <= 0:
            raise ConfigError(f"lr={self.lr!r} is not allowed; it must be > 0")
        if _number("weight_decay", self.weight_decay) < 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} is not allowed; it must be >= 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= _number(name, getattr(self, name)) < 1.0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed; it must lie in [0, 1)")
        _choice("loss", self.loss, LOSSES)
        _integer("steps", self.steps, 1)
        if self.batch_size is not None:
            _integer("batch_size", self.batch_size, 1)
        _integer("seed", self.seed, 0)
        _choice("device", self.device, DEVICES)
        n_train = self.n_train
        if n_train < 1 or n_train >= self.p**2:
            raise ConfigError(
                f"train_frac={self.train_frac!r} is not allowed with p={self.p}: it leaves "
                f"{n_train} training and {self.p**2 - n_train} test pairs; both need at least one"
            )
        if self.noise > 0 and int(self.noise * n_train) < 1:
            raise ConfigError(
                f"noise={self.noise!r} is not allowed with {n_train} training pairs: it corrupts "
                f"floor(noise * n_train) = 0 labels; use noise=0 or noise >= {1 / n_train:.4f}"
            )

    # ------------------------------------------------------------------ identity
    @property
    def n_train(self) -> int:
        """Number of training pairs: round(train_frac * p**2)."""
        return int(round(self.train_frac * self.p**2))

    @property
    def n_noisy(self) -> int:
        """Number of corrupted training labels: floor(noise * n_train)."""
        return int(self.noise * self.n_train)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that determine results (everything but ``device``) plus the engine version."""
        d = self.to_dict()
        d.pop("device")
        d["noise"] = float(d["noise"])
        for k in ("train_frac", "lr", "weight_decay", "beta1", "beta2"):
            d[k] = float(d[k])
        d["engine_version"] = ENGINE_VERSION
        return d

    def key(self) -> str:
        """A stable content hash naming this run (20 hex digits)."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build a config from a dict, ignoring keys that are not fields (e.g. engine_version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def batch_key(self) -> tuple:
        """Fields that must agree for runs to train together as one stacked batch.

        Runs may differ in ``noise``, ``noise_mode``, ``seed``, ``lr`` and ``weight_decay``.
        """
        d = self.to_dict()
        for k in ("noise", "noise_mode", "seed", "lr", "weight_decay"):
            d.pop(k)
        return tuple(sorted(d.items()))

    def label(self) -> str:
        """A short human-readable description."""
        return (f"{self.task} p={self.p} M={self.width} {self.activation} noise={self.noise:g}"
                f" seed={self.seed}")


# ---------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """Defaults and sweep grids of one named setting.

    ``base`` holds RunConfig fields; ``widths``, ``noises`` and ``seeds`` are the grids the
    chapters sweep; ``width`` and ``noise`` the single-run defaults.
    """

    name: str
    base: dict[str, Any]
    widths: tuple[int, ...]
    noises: tuple[float, ...]
    seeds: tuple[int, ...]
    width: int
    noise: float
    description: str

    def config(self, **overrides: Any) -> RunConfig:
        """A RunConfig with this profile's defaults, overridden by ``overrides``.

        ``None`` values in ``overrides`` mean "use the profile default".
        """
        fields = {"width": self.width, "noise": self.noise, **self.base}
        fields.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in dataclasses.fields(RunConfig)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ConfigError(f"unknown run parameter(s) {unknown}; allowed: {sorted(names)}")
        return RunConfig(**fields)


PROFILES: dict[str, Profile] = {
    "test": Profile(
        name="test",
        base=dict(p=23, train_frac=0.5, lr=1e-2, weight_decay=1.0, steps=1000),
        widths=(9, 33, 129),
        noises=(0.0, 0.4, 0.8),
        seeds=(0,),
        width=129,
        noise=0.4,
        description="P = 23, 1000 steps: every chapter in seconds; too small for most effects",
    ),
    "book": Profile(
        name="book",
        base=dict(p=59, train_frac=0.5, lr=3e-3, weight_decay=1.0, steps=3000),
        widths=(17, 33, 65, 129, 257, 513),
        noises=(0.0, 0.2, 0.4, 0.6, 0.8),
        seeds=(0,),
        width=513,
        noise=0.8,
        description="CPU default: P = 59, AdamW lr 3e-3, wd 1.0, 3000 full-batch steps",
    ),
    "paper": Profile(
        name="paper",
        base=dict(p=113, train_frac=0.5, lr=1e-3, weight_decay=0.1, steps=200_000),
        widths=(17, 33, 65, 129, 257, 513, 1025, 2049, 4097),
        noises=(0.0, 0.2, 0.4, 0.6, 0.8),
        seeds=(0, 1, 2),
        width=2049,
        noise=0.8,
        description="the paper: P = 113, AdamW lr 1e-3, wd 0.1, 200k full-batch steps (GPU)",
    ),
}


def get_profile(name: str) -> Profile:
    """Return the named profile (``test``, ``book`` or ``paper``)."""
    _choice("profile", name, tuple(PROFILES))
    return PROFILES[name]
