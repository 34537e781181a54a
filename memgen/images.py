"""Noise first on real images: a 3-layer fully connected network trained full batch on images
with a fraction α of wrong labels (the paper's MNIST check, §3).

The paper reports that on MNIST at α = 0.05 a 3-layer network fits its *noisy* training labels
before its clean ones: 10.87% / 2.86% training accuracy on the noisy / clean subsets after
epoch 1, 6.47% / 46.29% after epoch 2 (full batch, so an epoch is one optimizer step).

Data
    :func:`load_digits` — the 8×8 digits data set that scikit-learn ships (1797 images, offline;
    scikit-learn is imported only inside this function, so the training core never needs it).
    :func:`load_mnist` — MNIST from a folder holding the IDX files (``train-images-idx3-ubyte``
    and friends, optionally gzipped, also torchvision's ``MNIST/raw`` layout), read by
    :func:`read_idx`; no torchvision needed.
Noise
    :func:`noisy_image_labels` corrupts exactly floor(α · n) training labels, each to a label
    drawn uniformly from the K − 1 wrong classes — the ``wrong`` noise mode of
    :func:`memgen.tasks.noisy_labels`, which it calls.
Training
    :class:`ImageConfig` (validated) and :func:`train_mlp`: two hidden ReLU layers, cross-entropy,
    full batch, with the accuracies of :mod:`memgen.metrics` recorded after every epoch (epoch 0
    is the initialisation). :func:`sweep_images` trains a grid of noise levels and seeds;
    :func:`epoch_rows` flattens runs into one record per (run, epoch).

Only torch and numpy are imported at module level.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .configs import DEVICES, ConfigError, _plain_fields, content_key
from .metrics import METRICS, subset_accuracies
from .tasks import noisy_labels
from .verdicts import compare

SOURCES = ("digits", "mnist")
IMAGE_OPTIMIZERS = ("adam", "adamw", "sgd")

#: The paper's MNIST numbers (§3): accuracy on the noisy / clean training subsets at α = 0.05.
PAPER_MNIST = {"noise": 0.05, 1: {"noisy_acc": 0.1087, "clean_acc": 0.0286},
               2: {"noisy_acc": 0.0647, "clean_acc": 0.4629}}

#: IDX element types: type code -> big-endian numpy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Where ``make mnist`` (:func:`memgen.fetch.fetch_mnist`) puts MNIST in a clone of the repository:
#: :func:`setup_images` reads it when no folder is given.
DEFAULT_MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist"

#: The four MNIST files, without the optional ``.gz`` suffix.
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a finite number")
    return value


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}")
    return int(value)


def _fraction(name: str, value: Any, *, closed_low: bool) -> float:
    v = _finite(name, value)
    ok = (0.0 <= v < 1.0) if closed_low else (0.0 < v < 1.0)
    if not ok:
        raise ConfigError(f"{name}={value!r} is not allowed; it must lie in {'[0' if closed_low else '(0'}, 1)")
    return v


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class ImageData:
    """Images as flat feature vectors, split into train and test.

    Parameters
    ----------
    x_train : (n_train, d) float32 array
        Training pixels scaled to [0, 1], one image per row.
    y_train : (n_train,) int64 array
        True class labels of the training images, in 0..n_classes-1.
    x_test : (n_test, d) float32 array
        Test pixels, as ``x_train``.
    y_test : (n_test,) int64 array
        True class labels of the test images.
    n_classes : int
        Number of classes K.
    image_shape : tuple of int
        Shape of one image (e.g. (8, 8) or (28, 28)).
    source : str
        Where the data came from, in words (figures and tables say it).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple[int, ...]
    source: str

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test images."""
        return len(self.y_test)

    @property
    def n_features(self) -> int:
        """Pixels per image."""
        return int(self.x_train.shape[1])


def load_digits(test_frac: float = 0.3, split_seed: int = 0) -> ImageData:
    """The 8×8 digits data set that scikit-learn ships (1797 images, 10 classes, offline).

    Parameters
    ----------
    test_frac : float, default=0.3
        Fraction of the images held out for testing, in (0, 1).
    split_seed : int, default=0
        Seed of the random train/test split.

    Returns
    -------
    ImageData
        Pixels scaled from 0..16 to [0, 1].

    Raises
    ------
    ConfigError
        When a parameter is out of range, or scikit-learn is not installed.
    """
    test_frac = _fraction("test_frac", test_frac, closed_low=False)
    split_seed = _int("split_seed", split_seed, 0)
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:  # scikit-learn is in requirements.txt; the core does not need it
        raise ConfigError("source='digits' needs scikit-learn; install it with "
                          "`pip install scikit-learn` (or the `images` extra)") from None
    d = _sk_digits()
    x = (np.asarray(d.data, dtype=np.float32) / 16.0)
    y = np.asarray(d.target, dtype=np.int64)
    return _split(x, y, 10, (8, 8), test_frac, split_seed, f"scikit-learn digits (8×8, {len(y)} images)")


def _split(x: np.ndarray, y: np.ndarray, k: int, shape: tuple[int, ...], test_frac: float, seed: int,
           source: str) -> ImageData:
    n_test = int(round(test_frac * len(y)))
    if n_test < 1 or n_test >= len(y):
        raise ConfigError(f"test_frac={test_frac!r} is not allowed with {len(y)} images: it leaves "
                          f"{len(y) - n_test} training and {n_test} test images; both need at least one")
    perm = np.random.default_rng([seed, 31337]).permutation(len(y))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return ImageData(x[tr], y[tr], x[te], y[te], k, shape, source)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the format MNIST ships in), gzipped or not.

    The format: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each dimension as a
    big-endian int32, then the data in C order, big-endian.

    Parameters
    ----------
    path : str or path-like
        The file (``.gz`` files, or any file starting with the gzip magic, are decompressed).

    Returns
    -------
    numpy.ndarray
        With the file's shape and a native-endian dtype.

    Raises
    ------
    ConfigError
        When the file is missing or is not a well-formed IDX file (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"path={str(path)!r} is not allowed; no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ConfigError(f"path={str(path)!r} is not allowed; it is a damaged gzip file ({e})") from None

    def bad(why: str) -> ConfigError:
        return ConfigError(f"path={str(path)!r} is not allowed; it is not an IDX file ({why})")

    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise bad("it must start with two zero bytes")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise bad(f"unknown type code 0x{code:02x}")
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise bad(f"{ndim} dimensions in a header of {len(raw)} bytes")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    need = int(np.prod(shape)) * dtype.itemsize
    have = len(raw) - 4 - 4 * ndim
    if have != need:
        raise bad(f"shape {shape} needs {need} data bytes, the file has {have}")
    arr = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def find_mnist(path: str | os.PathLike) -> dict[str, Path]:
    """Locate the four MNIST IDX files under ``path``.

    Looks in ``path``, ``path/raw`` and ``path/MNIST/raw`` (torchvision's layout), for each file
    plain or with ``.gz``.

    Parameters
    ----------
    path : str or path-like
        The folder the reader keeps MNIST in.

    Returns
    -------
    dict
        ``train_images``, ``train_labels``, ``test_images``, ``test_labels`` -> file path.

    Raises
    ------
    ConfigError
        Naming ``path`` and the files looked for, when they are not all there.
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"path={str(root)!r} is not allowed; it must be a folder holding the MNIST IDX files "
                          f"({', '.join(MNIST_FILES.values())}, optionally .gz)")
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        found = {}
        for key, name in MNIST_FILES.items():
            for cand in (folder / name, folder / f"{name}.gz"):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == len(MNIST_FILES):
            return found
    raise ConfigError(f"path={str(root)!r} is not allowed; it lacks the MNIST IDX files "
                      f"({', '.join(MNIST_FILES.values())}, optionally .gz; looked in it, raw/ and MNIST/raw/)")


def load_mnist(path: str | os.PathLike, n_train: int | None = None, n_test: int | None = None,
               subset_seed: int = 0) -> ImageData:
    """MNIST from the IDX files in ``path`` (see :func:`find_mnist`), pixels scaled to [0, 1].

    Parameters
    ----------
    path : str or path-like
        Folder holding the four IDX files.
    n_train, n_test : int or None, default=None
        Use a random subset of this many training / test images (None: all 60000 / 10000).
    subset_seed : int, default=0
        Seed of the subsets.

    Returns
    -------
    ImageData
        Pixels scaled from 0..255 to [0, 1]; ``source`` names the folder and the sizes.

    Raises
    ------
    ConfigError
        When the files are missing or malformed, or a subset size is out of range.
    """
    files = find_mnist(path)
    subset_seed = _int("subset_seed", subset_seed, 0)
    arrays = {k: read_idx(f) for k, f in files.items()}
    for part in ("train", "test"):
        xi, yi = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or len(xi) != len(yi):
            raise ConfigError(f"path={str(path)!r} is not allowed; {part} images {xi.shape} and labels "
                              f"{yi.shape} do not match")
    out = {}
    rng = np.random.default_rng([subset_seed, 60013])
    for part, n in (("train", n_train), ("test", n_test)):
        x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"].astype(np.int64)
        if n is not None:
            n = _int(f"n_{part}", n, 1)
            if n > len(y):
                raise ConfigError(f"n_{part}={n!r} is not allowed; the files hold {len(y)} {part} images")
            keep = np.sort(rng.permutation(len(y))[:n])
            x, y = x[keep], y[keep]
        out[part] = (x.reshape(len(x), -1).astype(np.float32) / 255.0, y)
    k = int(max(out["train"][1].max(), out["test"][1].max())) + 1
    shape = tuple(int(s) for s in arrays["train_images"].shape[1:])
    src = f"MNIST ({len(out['train'][1])} training / {len(out['test'][1])} test images from {path})"
    return ImageData(out["train"][0], out["train"][1], out["test"][0], out["test"][1], k, shape, src)


def load_images(source: str = "digits", path: str | os.PathLike | None = None, **kwargs: Any) -> ImageData:
    """Load ``source``: ``digits`` (scikit-learn, offline) or ``mnist`` (IDX files in ``path``).

    Parameters
    ----------
    source : {"digits", "mnist"}, default="digits"
        Which data set.
    path : str or path-like or None, default=None
        MNIST's folder (required for ``mnist``, ignored for ``digits``).
    **kwargs
        Passed to :func:`load_digits` or :func:`load_mnist`.

    Returns
    -------
    ImageData
        The loaded images (``source`` says which data they are).
    """
    if source not in SOURCES:
        raise ConfigError(f"source={source!r} is not allowed; choose one of {', '.join(SOURCES)}")
    if source == "digits":
        return load_digits(**kwargs)
    if path is None:
        raise ConfigError("path=None is not allowed with source='mnist'; give the folder holding "
                          "train-images-idx3-ubyte[.gz] and the other MNIST IDX files")
    return load_mnist(path, **kwargs)


def noisy_image_labels(y: np.ndarray, n_classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt exactly floor(noise · n) labels, each to one of the K − 1 wrong classes (uniform).

    This is :func:`memgen.tasks.noisy_labels` in its ``wrong`` mode with the K classes in the
    role of the residues mod p.

    Parameters
    ----------
    y : (n,) int array
        True training labels.
    n_classes : int
        Number of classes K (>= 2).
    noise : float
        Fraction α of labels to corrupt, in [0, 1).
    seed : int
        Seed of the choice of samples and of their wrong labels.

    Returns
    -------
    labels : (n,) int64 array
        The labels to train on.
    noisy : (n,) bool array
        Which samples were corrupted (their label is never the true one).

    Raises
    ------
    ConfigError
        When ``noise`` is out of range or corrupts no label at all.
    """
    noise = _fraction("noise", noise, closed_low=True)
    n_classes = _int("n_classes", n_classes, 2)
    seed = _int("seed", seed, 0)
    y = np.asarray(y, dtype=np.int64)
    if noise > 0 and int(noise * len(y)) < 1:
        raise ConfigError(f"noise={noise!r} is not allowed with {len(y)} training images: it corrupts "
                          f"floor(noise * n) = 0 labels; use noise=0 or noise >= {1 / len(y):.4f}")
    return noisy_labels(y, np.arange(len(y)), n_classes, noise, "wrong", seed)


# ---------------------------------------------------------------------------- training
#: The fields of :class:`ImageConfig` that its identity (and a record's key) holds as floats.
_FLOAT_FIELDS = ("noise", "lr", "weight_decay", "beta1", "beta2")


@dataclass(frozen=True)
class ImageConfig:
    """One training run of the image network.

    Validated on construction; numpy scalars are stored as the Python numbers they hold, so they
    give the same :meth:`identity` (and record key).

    Parameters
    ----------
    noise : float, default=0.05
        Fraction α of training labels made wrong, in [0, 1).
    hidden : int, default=256
        Width of both hidden layers (the paper does not give it).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        torch.optim's Adam, AdamW, or SGD with momentum ``beta1``.
    lr : float, default=1e-3
        Learning rate (> 0).
    weight_decay : float, default=0.0
        Weight decay (>= 0; decoupled for AdamW, L2 otherwise).
    beta1, beta2 : float, default=0.9, 0.999
        Adam's betas (beta1 is SGD's momentum), in [0, 1).
    epochs : int, default=30
        Full-batch steps (= epochs).
    seed : int, default=0
        Seed of the label noise and of the initialisation.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train.
    """

    noise: float = 0.05
    hidden: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epochs: int = 30
    seed: int = 0
    device: str = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        _plain_fields(self)  # numpy scalars count as the Python values they hold
        _fraction("noise", self.noise, closed_low=True)
        _int("hidden", self.hidden, 1)
        if self.optimizer not in IMAGE_OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is not allowed; choose one of "
                              f"{', '.join(IMAGE_OPTIMIZERS)}")
        if _finite("lr", self.lr) <= 0:
            raise ConfigError(f"lr={self.lr!r} is not allowed; it must be > 0")
        if _finite("weight_decay", self.weight_decay) < 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} is not allowed; it must be >= 0")
        for name in ("beta1", "beta2"):
            _fraction(name, getattr(self, name), closed_low=True)
        _int("epochs", self.epochs, 1)
        _int("seed", self.seed, 0)
        if self.device not in DEVICES:
            raise ConfigError(f"device={self.device!r} is not allowed; choose one of {', '.join(DEVICES)}")

    def identity(self) -> dict[str, Any]:
        """The fields that determine training (every field but ``device``), floats as floats.

        Returns
        -------
        dict
            Field name to value (``lr=1`` and ``lr=1.0`` give the same identity).
        """
        d = dataclasses.asdict(self)
        d.pop("device")
        for k in _FLOAT_FIELDS:
            d[k] = float(d[k])
        return d

    def label(self) -> str:
        """A short human-readable description.

        Returns
        -------
        str
            Width, optimizer, learning rate, α and seed in one line.
        """
        return f"MLP {self.hidden}-{self.hidden} {self.optimizer} lr={self.lr:g} α={self.noise:g} seed={self.seed}"


@dataclass
class ImageRun:
    """A finished image run.

    Parameters
    ----------
    config : ImageConfig
        The run's configuration.
    history : dict of str to list of float
        ``epoch``, ``loss`` and each name in :data:`memgen.metrics.METRICS`, one entry per epoch
        0..epochs (epoch 0: the initialisation; epoch e: after e full-batch steps).
    noisy : (n_train,) bool array
        The corruption mask of the training images.
    source : str
        The data the run was trained on, in words.
    meta : dict, default={}
        Seconds, device, and the numbers of training, test and corrupted images.
    """

    config: ImageConfig
    history: dict[str, list[float]]
    noisy: np.ndarray
    source: str
    meta: dict = field(default_factory=dict)

    def at(self, metric: str, epoch: int) -> float:
        """The value of a history ``metric`` after ``epoch`` full-batch steps.

        Parameters
        ----------
        metric : str
            A history key (``noisy_acc``, ``clean_acc``, ``test_acc``, ``loss``, ...).
        epoch : int
            0 (the initialisation) to ``config.epochs``.

        Returns
        -------
        float
            The recorded value.
        """
        if metric not in self.history:
            raise ConfigError(f"metric={metric!r} is not allowed; choose one of {', '.join(self.history)}")
        epoch = _int("epoch", epoch, 0)
        if epoch > self.config.epochs:
            raise ConfigError(f"epoch={epoch!r} is not allowed; the run has epochs 0..{self.config.epochs}")
        return self.history[metric][epoch]


def _init_mlp(d: int, h: int, k: int, seed: int, device: torch.device) -> list[torch.Tensor]:
    """torch.nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 17)
    params = []
    for fan_in, fan_out in ((d, h), (h, h), (h, k)):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
        params += [w.to(device).requires_grad_(), b.to(device).requires_grad_()]
    return params


def _mlp(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2, w3, b3 = params
    return torch.relu(torch.relu(x @ w1 + b1) @ w2 + b2) @ w3 + b3


def _optimizer(cfg: ImageConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.beta1, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def train_mlp(data: ImageData, config: ImageConfig) -> ImageRun:
    """Train the 3-layer network on ``data`` with ``config``'s label noise, full batch.

    The network is x -> ReLU(x W1 + b1) -> ReLU(. W2 + b2) -> . W3 + b3 with both hidden
    layers ``config.hidden`` wide, trained on the mean cross-entropy over all training images at
    every step. After every step the accuracies of :mod:`memgen.metrics` are recorded:
    ``noisy_acc`` / ``clean_acc`` against the labels each subset was trained with,
    ``noisy_true_acc`` on the corrupted images against their true labels, ``test_acc``.

    Parameters
    ----------
    data : ImageData
        The images (labels are the true ones; the noise is added here).
    config : ImageConfig
        The run.

    Returns
    -------
    ImageRun
        The run with its per-epoch history.

    Raises
    ------
    ConfigError
        When the noise corrupts no label, or ``device='cuda'`` without a CUDA device.
    """
    if not isinstance(data, ImageData):
        raise ConfigError(f"data={type(data).__name__} is not allowed; load it with memgen.images.load_images")
    if not isinstance(config, ImageConfig):
        raise ConfigError(f"config={type(config).__name__} is not allowed; it must be an ImageConfig")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' is not allowed here; no CUDA device is available (use 'auto' or 'cpu')")
    device = torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
    labels, noisy = noisy_image_labels(data.y_train, data.n_classes, config.noise, config.seed)
    n = data.n_train
    x = torch.as_tensor(np.concatenate([data.x_train, data.x_test]), device=device)
    true = torch.as_tensor(np.concatenate([data.y_train, data.y_test]), device=device)
    train_idx = torch.arange(n, device=device)
    test_idx = torch.arange(n, n + data.n_test, device=device)
    y = torch.as_tensor(labels, device=device)
    noisy_t = torch.as_tensor(noisy, device=device)
    params = _init_mlp(data.n_features, config.hidden, data.n_classes, config.seed, device)
    opt = _optimizer(config, params)
    hist: dict[str, list[float]] = {k: [] for k in ("epoch", "loss", *METRICS)}
    t0 = time.perf_counter()
    for epoch in range(config.epochs + 1):
        logits = _mlp(params, x)
        loss = F.cross_entropy(logits[:n], y)
        with torch.no_grad():
            acc = subset_accuracies(logits.argmax(-1)[None], true, train_idx, test_idx, y[None], noisy_t[None])
        hist["epoch"].append(epoch)
        hist["loss"].append(float(loss.detach()))
        for k in METRICS:
            hist[k].append(float(acc[k][0]))
        if not math.isfinite(hist["loss"][-1]):
            raise ConfigError(f"lr={config.lr!r} is not allowed for {config.label()}: the loss became "
                              f"{hist['loss'][-1]} at epoch {epoch}; use a smaller lr")
        if epoch == config.epochs:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    meta = {"seconds": time.perf_counter() - t0, "device": str(device), "n_train": n, "n_test": data.n_test,
            "n_noisy": int(noisy.sum())}
    return ImageRun(config, hist, noisy, data.source, meta)


def sweep_images(data: ImageData, noises: Sequence[float], seeds: Sequence[int], **config: Any) -> list[ImageRun]:
    """Train one run per (noise, seed), in that order, sharing the other ``config`` fields.

    Parameters
    ----------
    data : ImageData
        The images.
    noises : sequence of float
        Noise levels α (each in [0, 1)).
    seeds : sequence of int
        Seeds (non-negative integers).
    **config
        Other :class:`ImageConfig` fields (hidden, optimizer, lr, epochs, ...).

    Returns
    -------
    list of ImageRun
        One per (noise, seed), noise-major.
    """
    if isinstance(noises, (str, bytes)) or not isinstance(noises, Sequence) or len(noises) == 0:
        raise ConfigError(f"noises={noises!r} is not allowed; give a non-empty list of numbers in [0, 1)")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ConfigError(f"seeds={seeds!r} is not allowed; give a non-empty list of integers >= 0")
    names = set(ImageConfig.__dataclass_fields__) - {"noise", "seed"}
    unknown = sorted(set(config) - names)
    if unknown:
        raise ConfigError(f"unknown image run parameter(s) {unknown}; allowed: {sorted(names)}")
    configs = [ImageConfig(noise=a, seed=s, **config) for a in noises for s in seeds]  # validate all first
    return [train_mlp(data, c) for c in configs]


def epoch_rows(runs: Sequence[ImageRun], epochs: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One record per (run, epoch): noise, seed, epoch and the recorded accuracies.

    Parameters
    ----------
    runs : sequence of ImageRun
        Finished runs.
    epochs : sequence of int or None, default=None
        Which epochs (None: all recorded).

    Returns
    -------
    list of dict
        Keys ``source``, ``noise``, ``seed``, ``epoch``, ``loss`` and the metrics.
    """
    rows = []
    for r in runs:
        for e in (epochs if epochs is not None else r.history["epoch"]):
            rows.append({"source": r.source, "noise": r.config.noise, "seed": r.config.seed, "epoch": int(e),
                         "loss": r.at("loss", e), **{k: r.at(k, e) for k in METRICS}})
    return rows


# ---------------------------------------------------------------------------- chapter setup
#: Per-profile defaults of the image chapter (the paper gives no width, learning rate or epochs
#: for its MNIST check: these are choices, exposed as parameters).
IMAGE_PROFILES: dict[str, dict[str, Any]] = {
    "test": dict(hidden=64, epochs=8, seeds=(0, 1, 2), optimizer="adam", lr=1e-3),
    "book": dict(hidden=256, epochs=30, seeds=(0, 1, 2, 3, 4), optimizer="adam", lr=1e-3),
    "paper": dict(hidden=512, epochs=50, seeds=(0, 1, 2, 3, 4), optimizer="adam", lr=1e-3),
}
IMAGE_PROFILES["paper20k"] = IMAGE_PROFILES["paper"]

#: The noise levels of the paper's MNIST check.
PAPER_NOISES = (0.05, 0.2)

#: The data each profile's shipped results are trained on (:func:`memgen.results.produce`):
#: the paper's scale is MNIST, which is not shipped and needs a path; the CPU profiles use digits.
SHIPPED_DATA = {"test": "digits", "book": "digits", "paper": "mnist", "paper20k": "mnist"}

#: Bumped whenever a change to this module changes training results (part of a record's key).
IMAGES_VERSION = 1


def plan_configs(profile: str) -> list[ImageConfig]:
    """The chapter's runs at its default parameters under ``profile`` (the paper's α, every seed).

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}
        A key of :data:`IMAGE_PROFILES`.

    Returns
    -------
    list of ImageConfig
        One per (α, seed), noise-major, as :meth:`ImageSetup.configs` gives them.
    """
    if profile not in IMAGE_PROFILES:
        raise ConfigError(f"profile={profile!r} is not allowed; choose one of {', '.join(IMAGE_PROFILES)}")
    run = dict(IMAGE_PROFILES[profile])
    seeds = run.pop("seeds")
    return [ImageConfig(noise=a, seed=s, **run) for a in PAPER_NOISES for s in seeds]


def record_key(config: ImageConfig, data: str) -> str:
    """The content key of a run of ``config`` on the data set named ``data`` (a shipped record's name).

    Parameters
    ----------
    config : ImageConfig
        The run (its device is not part of the key).
    data : {"digits", "mnist"}
        The data set.

    Returns
    -------
    str
        20 hex digits (:func:`memgen.configs.content_key`).
    """
    return content_key({**config.identity(), "data": data, "images_version": IMAGES_VERSION})


@dataclass(frozen=True)
class ImageSetup:
    """The image chapter's validated parameters.

    Parameters
    ----------
    profile : str
        ``test``, ``book`` or ``paper``.
    data : ImageData
        The loaded images.
    noises : tuple of float
        Noise levels α.
    seeds : tuple of int
        Seeds.
    run : dict
        The other :class:`ImageConfig` fields (hidden, epochs, optimizer, lr).
    """

    profile: str
    data: ImageData
    noises: tuple[float, ...]
    seeds: tuple[int, ...]
    run: dict[str, Any]

    def configs(self) -> list[ImageConfig]:
        """One config per (noise, seed), noise-major.

        Returns
        -------
        list of ImageConfig
            In the order :func:`sweep_images` trains them.
        """
        return [ImageConfig(noise=a, seed=s, **self.run) for a in self.noises for s in self.seeds]

    def settings(self) -> str:
        """Where the chapter's numbers were measured, in one line.

        Returns
        -------
        str
            Data, network, optimizer, epochs and seeds.
        """
        r = self.run
        return (f"{self.data.source}; MLP {r['hidden']}-{r['hidden']}, {r['optimizer']} lr {r['lr']:g}, "
                f"full batch, {r['epochs']} epochs, {len(self.seeds)} seeds; profile {self.profile}")


def setup_images(profile: str = "book", *, data: str = "digits", mnist_path: str | os.PathLike | None = None,
                 noises: Sequence[float] | None = None, seeds: Sequence[int] | None = None,
                 **run: Any) -> ImageSetup:
    """Validate the image chapter's parameters and load its data.

    Parameters
    ----------
    profile : {"test", "book", "paper", "paper20k"}, default="book"
        Which defaults of :data:`IMAGE_PROFILES` to use.
    data : {"digits", "mnist"}, default="digits"
        The data set (see :func:`load_images`).
    mnist_path : str or path-like or None, default=None
        MNIST's folder (``data='mnist'`` only; None: :data:`DEFAULT_MNIST`, the repository's
        ``data/mnist``, once ``make mnist`` has filled it).
    noises : sequence of float or None, default=None
        Noise levels (None: the paper's 0.05 and 0.2).
    seeds : sequence of int or None, default=None
        Seeds (None: the profile's).
    **run
        :class:`ImageConfig` fields (hidden, epochs, optimizer, lr, ...); None means the
        profile's default.

    Returns
    -------
    ImageSetup
        The data, grids and run fields, all validated.

    Raises
    ------
    ConfigError
        Naming the first bad parameter (as the chapter names it: ``data``, ``mnist_path``, ...).
    """
    if profile not in IMAGE_PROFILES:
        raise ConfigError(f"profile={profile!r} is not allowed; choose one of {', '.join(IMAGE_PROFILES)}")
    prof = dict(IMAGE_PROFILES[profile])
    default_seeds = prof.pop("seeds")
    names = set(ImageConfig.__dataclass_fields__) - {"noise", "seed"}
    unknown = sorted(set(run) - names)
    if unknown:
        raise ConfigError(f"unknown image run parameter(s) {unknown}; allowed: {sorted(names)}")
    fields = {**prof, **{k: v for k, v in run.items() if v is not None}}
    noises = PAPER_NOISES if noises is None else noises
    seeds = default_seeds if seeds is None else seeds
    for name, grid in (("noises", noises), ("seeds", seeds)):
        if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) == 0:
            raise ConfigError(f"{name}={grid!r} is not allowed; give a non-empty list")
    cfgs = [ImageConfig(noise=a, seed=s, **fields) for a in noises for s in seeds]  # validates every field
    if data not in SOURCES:
        raise ConfigError(f"data={data!r} is not allowed; choose one of {', '.join(SOURCES)}")
    if data == "mnist" and mnist_path is None:
        try:
            find_mnist(DEFAULT_MNIST)
        except ConfigError:
            raise ConfigError("mnist_path=None is not allowed with data='mnist' before `make mnist` has fetched "
                              "MNIST into the repository's data/mnist; run it, or give the folder holding "
                              "train-images-idx3-ubyte[.gz] and the other MNIST IDX files") from None
        mnist_path = DEFAULT_MNIST
    try:
        images = load_images(data, mnist_path)
    except ConfigError as e:  # name the chapter's parameter, not the loader's
        msg = str(e)
        raise ConfigError("mnist_" + msg if msg.startswith("path=") else msg) from None
    for a in noises:
        noisy_image_labels(images.y_train, images.n_classes, a, 0)  # the noisy count must fit this data
    return ImageSetup(profile, images, tuple(float(a) for a in noises), tuple(int(s) for s in seeds),
                      {k: getattr(cfgs[0], k) for k in fields})


def curves(runs: Sequence[ImageRun], noise: float, metric: str) -> np.ndarray:
    """One recorded metric of the runs at one noise level, stacked over seeds.

    Parameters
    ----------
    runs : sequence of ImageRun
        Runs sharing their number of epochs.
    noise : float
        The noise level α to select.
    metric : str
        A history key (``noisy_acc``, ``clean_acc``, ``test_acc``, ...).

    Returns
    -------
    numpy.ndarray
        (seeds, epochs + 1), in the order of ``runs``.
    """
    sel = [r.history[metric] for r in runs if r.config.noise == noise]
    if not sel:
        raise ConfigError(f"noise={noise!r} is not allowed; the runs have noise levels "
                          f"{sorted({r.config.noise for r in runs})}")
    return np.array(sel, dtype=float)


def noise_first_verdicts(setup: ImageSetup, runs: Sequence[ImageRun]) -> dict[str, Any]:
    """Judge the paper's MNIST claim on the runs of ``setup`` (see :func:`judge_noise_first`).

    Parameters
    ----------
    setup : ImageSetup
        The chapter's setup (data, α grid, seeds).
    runs : sequence of ImageRun
        The runs of ``setup``, as :func:`sweep_images` returns them.

    Returns
    -------
    dict
        ``noise_first`` (list of Verdict, one per α), ``clean_ahead`` and ``paper`` (Verdict).
    """
    return judge_noise_first(runs, setup.noises, n_train=setup.data.n_train, n_classes=setup.data.n_classes,
                             settings=setup.settings())


def judge_noise_first(runs: Sequence[Any], noises: Sequence[float], *, n_train: int, n_classes: int,
                      settings: str = "") -> dict[str, Any]:
    """Judge the paper's MNIST claim with :mod:`memgen.verdicts`, from runs' histories.

    Three claims: at each α, the noisy subset is fitted before the clean one at epoch 1 (noisy
    accuracy against its wrong labels above the clean subset's by more than the margin, and above
    chance 1/K in every seed); the clean subset is ahead by epoch 2 (at the paper's α = 0.05, or
    the first α); and the paper's own epoch-1 pair judged by the same rule (assuming 3000 noisy
    MNIST images, 5% of 60 000).

    Parameters
    ----------
    runs : sequence of ImageRun
        Runs (or anything with ``config.noise``, ``config.epochs`` and ``history``, such as a
        shipped record's), every seed of every α in ``noises``.
    noises : sequence of float
        The noise levels α judged.
    n_train, n_classes : int
        Training images and classes K of the data.
    settings : str, default=""
        Where the numbers were measured, for the verdicts.

    Returns
    -------
    dict
        ``noise_first`` (list of Verdict, one per α), ``clean_ahead`` and ``paper`` (Verdict).
    """
    if any(r.config.epochs < 2 for r in runs):
        raise ConfigError("epochs=1 is not allowed here; the claims are judged at epochs 1 and 2")
    chance = 1 / n_classes
    where = settings
    first = []
    for a in noises:
        n_noisy = int(a * n_train)
        noisy1, clean1 = curves(runs, a, "noisy_acc")[:, 1], curves(runs, a, "clean_acc")[:, 1]
        first.append(compare(f"at α = {a:g}, the noisy subset is fitted before the clean one (epoch 1)",
                             noisy1, clean1, a_name="noisy", b_name="clean", n=n_noisy,
                             floor=(noisy1, n_noisy, chance), settings=where))
    a0 = PAPER_MNIST["noise"] if PAPER_MNIST["noise"] in noises else noises[0]
    n0 = int(a0 * n_train)
    clean2, noisy2 = curves(runs, a0, "clean_acc")[:, 2], curves(runs, a0, "noisy_acc")[:, 2]
    ahead = compare(f"at α = {a0:g}, the clean subset is ahead by epoch 2", clean2, noisy2, a_name="clean",
                    b_name="noisy", n=n0, floor=(clean2, n0, chance), settings=where)
    n_paper = int(PAPER_MNIST["noise"] * 60_000)
    p1 = PAPER_MNIST[1]
    paper = compare("the paper's own epoch-1 numbers, judged by the same rule", p1["noisy_acc"], p1["clean_acc"],
                    a_name="noisy", b_name="clean", n=n_paper, floor=(p1["noisy_acc"], n_paper, 0.1),
                    settings=f"MNIST, α = 0.05, one run, {n_paper} noisy images (assumed: 5% of 60 000)")
    return {"noise_first": first, "clean_ahead": ahead, "paper": paper}
