import numpy as np
import pytest

from memgen.configs import RunConfig
from memgen.tasks import log_order, make_dataset, operate, primitive_root, split_indices


@pytest.mark.parametrize("mode", ["wrong", "any", "symmetric"])
@pytest.mark.parametrize("noise", [0.0, 0.13, 0.5, 0.8])
def test_exact_noise_count(mode, noise):
    c = RunConfig(p=23, noise=noise, noise_mode=mode, seed=3)
    d = make_dataset(c)
    assert d.noisy.sum() == int(noise * c.n_train) == c.n_noisy
    assert (d.train_labels[d.clean] == d.train_true[d.clean]).all()


@pytest.mark.parametrize("mode", ["wrong", "symmetric"])
def test_wrong_labels_are_never_true(mode):
    d = make_dataset(RunConfig(p=23, noise=0.9, noise_mode=mode))
    assert (d.train_labels[d.noisy] != d.train_true[d.noisy]).all()


def test_any_mode_is_uniform_over_all_classes():
    d = make_dataset(RunConfig(p=11, noise=0.95, noise_mode="any", train_frac=0.9))
    hits = (d.train_labels[d.noisy] == d.train_true[d.noisy]).mean()
    assert 0.02 < hits < 0.2  # about 1/p are accidentally right


def test_symmetric_pairs_agree():
    c = RunConfig(p=23, noise=0.5, noise_mode="symmetric", train_frac=0.7)
    d = make_dataset(c)
    lab = dict(zip(d.train_idx.tolist(), d.train_labels.tolist()))
    checked = 0
    for i in d.train_idx:
        a, b = divmod(int(i), c.p)
        j = b * c.p + a
        if j in lab:
            assert lab[int(i)] == lab[j]
            checked += 1
    assert checked > 100


def test_split_is_deterministic_and_disjoint():
    tr, te = split_indices(23, 0.5, 0)
    tr2, te2 = split_indices(23, 0.5, 0)
    assert (tr == tr2).all() and (te == te2).all()
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 23 * 23
    assert not np.array_equal(split_indices(23, 0.5, 1)[0], tr)


def test_test_labels_never_noisy_and_noise_depends_on_seed():
    d = make_dataset(RunConfig(p=23, noise=0.8))
    grid = d.label_grid().ravel()
    assert (grid[d.test_idx] == d.true[d.test_idx]).all()
    d2 = make_dataset(RunConfig(p=23, noise=0.8, seed=1))
    assert (d.train_idx == d2.train_idx).all() and not (d.noisy == d2.noisy).all()


def test_operations():
    a, b = np.array([3, 5]), np.array([4, 6])
    assert operate("add", a, b, 7).tolist() == [0, 4]
    assert operate("sub", a, b, 7).tolist() == [6, 6]
    assert operate("mul", a, b, 7).tolist() == [5, 2]


@pytest.mark.parametrize("p", [2, 3, 23, 59, 113])
def test_discrete_log_order_is_a_bijection(p):
    order = log_order(p)
    assert sorted(order.tolist()) == list(range(1, p))
    g = primitive_root(p)
    # multiplication of tokens is addition of logs mod p-1
    pos = {int(t): k for k, t in enumerate(order)}
    for x in range(1, p):
        assert pos[(g * x) % p] == (pos[x] + 1) % (p - 1)
