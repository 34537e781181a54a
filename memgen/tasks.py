"""Modular-arithmetic tasks, the train/test split and label noise.

All p**2 pairs (a, b) are enumerated in row-major order: pair index ``i = a * p + b``. The split
depends only on ``(p, train_frac, split_seed)``; the noise on ``(noise, noise_mode, seed)``. Test
labels are never noisy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .configs import RunConfig, validate_task


def operate(task: str, a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Return a ∘ b mod p elementwise for ``task`` in {"add", "sub", "mul"}.

    Parameters
    ----------
    task : {"add", "sub", "mul"}
        The operation.
    a, b : numpy.ndarray
        Integer operands in 0..p-1, broadcastable against each other.
    p : int
        The modulus (prime for ``mul``).

    Returns
    -------
    numpy.ndarray
        (a + b), (a - b) or (a * b) mod p.

    Raises
    ------
    ConfigError
        When ``task`` and ``p`` are not allowed together (see :func:`validate_task`).
    """
    validate_task(task, p)
    if task == "add":
        return (a + b) % p
    if task == "sub":
        return (a - b) % p
    return (a * b) % p


def all_pairs(p: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (a, b), a and b in 0..p-1, in row-major order (index a * p + b).

    Parameters
    ----------
    p : int
        The modulus.

    Returns
    -------
    a : numpy.ndarray
        (p*p,) int64 first operands.
    b : numpy.ndarray
        (p*p,) int64 second operands.
    """
    a, b = np.divmod(np.arange(p * p), p)
    return a.astype(np.int64), b.astype(np.int64)


def split_indices(p: int, train_frac: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic disjoint train/test pair indices (each sorted).

    Parameters
    ----------
    p : int
        The modulus; pairs are indexed 0..p*p-1.
    train_frac : float
        Fraction of pairs in the training set: round(train_frac * p**2) of them.
    split_seed : int
        Seed of the permutation (together with ``p``).

    Returns
    -------
    train_idx : numpy.ndarray
        Sorted pair indices of the training set.
    test_idx : numpy.ndarray
        Sorted pair indices of the test set (the others).
    """
    n_train = int(round(train_frac * p * p))
    perm = np.random.default_rng([split_seed, p, 7919]).permutation(p * p)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def noisy_labels(true: np.ndarray, train_idx: np.ndarray, p: int, noise: float, mode: str,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt exactly floor(noise * n_train) training labels.

    Parameters
    ----------
    true : numpy.ndarray
        (p*p,) int array of the true labels of all pairs.
    train_idx : numpy.ndarray
        (n_train,) pair indices of the training set.
    p : int
        The modulus (number of classes).
    noise : float
        Fraction alpha of training labels to corrupt, in [0, 1).
    mode : {"wrong", "any", "symmetric"}
        ``wrong``: a uniformly random wrong class; ``any``: a uniformly random class;
        ``symmetric``: like ``wrong``, with (a, b) and (b, a) corrupted together to the same label.
    seed : int
        Seed of the choice of corrupted samples and of their labels (together with ``p``).

    Returns
    -------
    labels : numpy.ndarray
        (n_train,) training labels after corruption.
    noisy : numpy.ndarray
        (n_train,) bool mask of the corrupted samples. In ``any`` mode a corrupted sample can
        keep its true label by chance (probability 1/p); it still counts as noisy.

    Raises
    ------
    ValueError
        In ``symmetric`` mode, when exactly floor(noise * n_train) labels cannot be corrupted in
        whole (a, b)/(b, a) groups.
    """
    n = len(train_idx)
    k = int(noise * n)
    rng = np.random.default_rng([seed, p, 104729])
    y = true[train_idx]
    noisy = np.zeros(n, dtype=bool)
    if k == 0:
        return y.copy(), noisy
    if mode == "symmetric":
        chosen = _symmetric_choice(train_idx, p, k, rng)
    else:
        chosen = rng.choice(n, size=k, replace=False)
    noisy[chosen] = True
    labels = y.copy()
    if mode == "any":
        labels[chosen] = rng.integers(0, p, size=k)
        return labels, noisy
    shift = rng.integers(1, p, size=n)  # uniform over the p-1 wrong classes
    if mode == "symmetric":
        # (a, b) and (b, a) share the shift of the pair with the smaller index
        a, b = np.divmod(train_idx, p)
        canon = np.minimum(a * p + b, b * p + a)
        first = {}
        for pos, c in enumerate(canon):
            first.setdefault(int(c), pos)
        shift = shift[[first[int(c)] for c in canon]]
    labels[noisy] = (y[noisy] + shift[noisy]) % p
    return labels, noisy


def _symmetric_choice(train_idx: np.ndarray, p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Pick exactly k training positions, always taking (a, b) and (b, a) together."""
    a, b = np.divmod(train_idx, p)
    canon = np.minimum(a * p + b, b * p + a)
    groups: dict[int, list[int]] = {}
    for pos, c in enumerate(canon):
        groups.setdefault(int(c), []).append(pos)
    order = [groups[c] for c in rng.permutation(sorted(groups))]
    chosen: list[int] = []
    for g in order:
        if len(chosen) + len(g) <= k:
            chosen.extend(g)
        if len(chosen) == k:
            break
    if len(chosen) != k:
        raise ValueError(f"noise_mode='symmetric' cannot corrupt exactly {k} labels with this split")
    return np.array(chosen)


@dataclass(frozen=True)
class Dataset:
    """One run's data. Arrays are numpy; ``true`` covers all p**2 pairs.

    Parameters
    ----------
    task : str
        The operation (``add``, ``sub`` or ``mul``).
    p : int
        The modulus.
    a, b : numpy.ndarray
        (p*p,) operands of every pair, in row-major order.
    true : numpy.ndarray
        (p*p,) true labels of every pair.
    train_idx, test_idx : numpy.ndarray
        Pair indices of the split.
    train_labels : numpy.ndarray
        (n_train,) labels the network is trained on (noisy where ``noisy``).
    noisy : numpy.ndarray
        (n_train,) bool mask of corrupted training samples.
    """

    task: str
    p: int
    a: np.ndarray
    b: np.ndarray
    true: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_labels: np.ndarray
    noisy: np.ndarray

    @property
    def train_true(self) -> np.ndarray:
        """True labels of the training pairs."""
        return self.true[self.train_idx]

    @property
    def clean(self) -> np.ndarray:
        """Mask of uncorrupted training samples."""
        return ~self.noisy

    def label_grid(self) -> np.ndarray:
        """(p, p) grid of labels as the network sees them.

        Returns
        -------
        numpy.ndarray
            (p, p) labels: training labels on training pairs, true labels elsewhere.
        """
        grid = self.true.copy()
        grid[self.train_idx] = self.train_labels
        return grid.reshape(self.p, self.p)

    def role_grid(self) -> np.ndarray:
        """(p, p) grid of pair roles: 0 test, 1 clean train, 2 noisy train.

        Returns
        -------
        numpy.ndarray
            (p, p) int64 roles, row a and column b for the pair (a, b).
        """
        role = np.zeros(self.p * self.p, dtype=np.int64)
        role[self.train_idx] = np.where(self.noisy, 2, 1)
        return role.reshape(self.p, self.p)


def chance_level(task: str, p: int) -> float:
    """The accuracy a network reaches without the Fourier rule: 1/P, more for ``mul``.

    For ``mul`` the pairs containing 0 (expected share z = (2P - 1)/P**2 of the test pairs) all
    belong to class 0, a rule no frequency carries, which frequency filtration keeps in its G part
    (token 0 lies outside the discrete-log frame). The level is then that of a network that knows
    only 0 * b = a * 0 = 0 and guesses elsewhere: z + (1 - z)/P.

    Parameters
    ----------
    task : str
        The operation.
    p : int
        The modulus.

    Returns
    -------
    float
        1/P for ``add`` and ``sub``; z + (1 - z)/P for ``mul``.
    """
    if task != "mul":
        return 1.0 / p
    z = (2 * p - 1) / p**2
    return z + (1 - z) / p


def make_dataset(config: RunConfig) -> Dataset:
    """Build the dataset of ``config`` (deterministic in its seeds).

    Parameters
    ----------
    config : RunConfig
        The run; its task, p, train_frac, split_seed, noise, noise_mode and seed are used.

    Returns
    -------
    Dataset
        All pairs, their true labels, the split and the (noisy) training labels.
    """
    p = config.p
    a, b = all_pairs(p)
    true = operate(config.task, a, b, p)
    train_idx, test_idx = split_indices(p, config.train_frac, config.split_seed)
    labels, noisy = noisy_labels(true, train_idx, p, config.noise, config.noise_mode, config.seed)
    return Dataset(config.task, p, a, b, true, train_idx, test_idx, labels, noisy)


# ---------------------------------------------------------------------------- discrete log
def primitive_root(p: int) -> int:
    """Smallest generator of the cyclic group Z_p^* (p prime).

    Parameters
    ----------
    p : int
        A prime.

    Returns
    -------
    int
        The smallest g in 2..p-1 whose powers cover Z_p^* (1 for p = 2).

    Raises
    ------
    ConfigError
        When ``p`` is not prime.
    """
    validate_task("mul", p)
    if p == 2:
        return 1
    phi = p - 1
    factors = {q for q in range(2, phi + 1) if phi % q == 0 and all(q % r for r in range(2, q))}
    for g in range(2, p):
        if all(pow(g, phi // q, p) != 1 for q in factors):
            return g
    raise AssertionError("unreachable: every prime has a primitive root")


def log_order(p: int) -> np.ndarray:
    """Tokens in discrete-log order: ``order[k] = g**k mod p`` for k = 0..p-2.

    Position k of a vector re-indexed by ``x[order]`` is the token whose discrete log is k, so
    multiplication of tokens becomes addition of positions mod p-1. Token 0 has no logarithm and
    is not in the order; analyses handle it separately.

    Parameters
    ----------
    p : int
        A prime.

    Returns
    -------
    numpy.ndarray
        (p-1,) int64 tokens g**0, g**1, ..., g**(p-2) mod p, g = :func:`primitive_root` (p).
    """
    g = primitive_root(p)
    return np.array([pow(g, k, p) for k in range(p - 1)], dtype=np.int64)
