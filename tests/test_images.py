"""memgen.images: loaders (digits, the IDX reader, MNIST's folder layouts), exact label noise,
the 3-layer network's recorded accuracies, and one-line errors for bad input."""

import gzip
import struct

import numpy as np
import pytest

from memgen import images as I
from memgen.configs import ConfigError


def write_idx(path, arr, code):
    """An IDX file written byte by byte from the format's definition (not with memgen's code)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">i", s) for s in arr.shape)
    blob = head + np.ascontiguousarray(arr, dtype=dtype).tobytes()
    if str(path).endswith(".gz"):
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path


@pytest.fixture(scope="module")
def digits():
    return I.load_digits(test_frac=0.3, split_seed=0)


def tiny_mnist(folder, n_train=12, n_test=5, gz=False, seed=0):
    """Four MNIST-like IDX files (4x4 images) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10}
    for name, arr in arrays.items():
        write_idx(folder / f"{name}{sfx}", arr, 0x08)
    return arrays


def test_digits_shapes_and_split(digits):
    assert digits.n_train + digits.n_test == 1797 and digits.n_test == round(0.3 * 1797)
    assert digits.x_train.shape == (digits.n_train, 64) and digits.x_test.shape == (digits.n_test, 64)
    assert digits.x_train.dtype == np.float32 and 0 <= digits.x_train.min() and digits.x_train.max() <= 1
    assert digits.image_shape == (8, 8) and digits.n_classes == 10 and set(digits.y_train) == set(range(10))
    assert "digits" in digits.source
    other = I.load_digits(split_seed=1)
    assert not np.array_equal(other.y_train, digits.y_train)


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, code, gz):
    rng = np.random.default_rng(code)
    arr = rng.integers(-100 if code != 0x08 else 0, 120, size=(3, 2, 5))
    if code in (0x0D, 0x0E):
        arr = arr / 7.0
    path = write_idx(tmp_path / ("x.idx.gz" if gz else "x.idx"), arr, code)
    out = I.read_idx(path)
    assert out.shape == (3, 2, 5) and out.dtype.isnative
    np.testing.assert_allclose(out, arr, rtol=1e-6)


def test_read_idx_rejects_malformed_files(tmp_path):
    good = write_idx(tmp_path / "a.idx", np.arange(6).reshape(2, 3), 0x08)
    truncated = tmp_path / "b.idx"
    truncated.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(ConfigError, match=r"path=.*b\.idx.*shape \(2, 3\) needs 6 data bytes, the file has 5"):
        I.read_idx(truncated)
    wrong_code = tmp_path / "c.idx"
    wrong_code.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">i", 1) + b"\x00")
    with pytest.raises(ConfigError, match="unknown type code 0x07"):
        I.read_idx(wrong_code)
    with pytest.raises(ConfigError, match="no such file"):
        I.read_idx(tmp_path / "missing.idx")


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_load_mnist_from_idx_files(tmp_path, layout):
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    arrays = tiny_mnist(folder, gz=layout == "torchvision")
    d = I.load_images("mnist", tmp_path)
    assert (d.n_train, d.n_test, d.n_features, d.image_shape, d.n_classes) == (12, 5, 16, (4, 4), 10)
    np.testing.assert_allclose(d.x_train[3], arrays["train-images-idx3-ubyte"][3].ravel() / 255.0, rtol=1e-6)
    assert (d.y_test == arrays["t10k-labels-idx1-ubyte"]).all()
    sub = I.load_mnist(tmp_path, n_train=7, n_test=2)
    assert (sub.n_train, sub.n_test) == (7, 2) and set(sub.y_train) <= set(d.y_train)


def test_load_mnist_names_what_is_missing(tmp_path):
    tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ConfigError, match=r"lacks the MNIST IDX files"):
        I.load_mnist(tmp_path)
    with pytest.raises(ConfigError, match=r"path=None is not allowed with source='mnist'"):
        I.load_images("mnist")


@pytest.mark.parametrize("noise", [0.05, 0.2, 0.37])
def test_noise_count_is_exact_and_labels_are_wrong(digits, noise):
    labels, noisy = I.noisy_image_labels(digits.y_train, 10, noise, seed=4)
    assert noisy.sum() == int(noise * digits.n_train)
    assert (labels[noisy] != digits.y_train[noisy]).all() and (labels[~noisy] == digits.y_train[~noisy]).all()
    assert labels.min() >= 0 and labels.max() <= 9
    again, _ = I.noisy_image_labels(digits.y_train, 10, noise, seed=4)
    other, _ = I.noisy_image_labels(digits.y_train, 10, noise, seed=5)
    assert (again == labels).all() and not (other == labels).all()


def test_wrong_labels_are_spread_over_the_wrong_classes(digits):
    labels, noisy = I.noisy_image_labels(digits.y_train, 10, 0.9, seed=0)
    shift = (labels[noisy] - digits.y_train[noisy]) % 10
    counts = np.bincount(shift, minlength=10)
    assert counts[0] == 0 and (counts[1:] > 0.5 * noisy.sum() / 9).all()


def test_training_records_every_epoch_in_range(digits):
    run = I.train_mlp(digits, I.ImageConfig(noise=0.2, hidden=32, lr=1e-2, epochs=6, seed=1, device="cpu"))
    h = run.history
    assert h["epoch"] == list(range(7)) and run.meta["n_noisy"] == int(0.2 * digits.n_train)
    for k in ("train_acc", "clean_acc", "noisy_acc", "noisy_true_acc", "test_acc"):
        assert all(0.0 <= v <= 1.0 for v in h[k]), k
    # the training accuracy is the size-weighted mean of the two subsets, each against its own labels
    frac = run.noisy.mean()
    for e in (0, 3, 6):
        assert run.at("train_acc", e) == pytest.approx(frac * run.at("noisy_acc", e)
                                                       + (1 - frac) * run.at("clean_acc", e))
    assert h["loss"][-1] < h["loss"][0] and run.at("clean_acc", 6) > 0.3


def test_runs_are_deterministic_and_rows_are_flat(digits):
    runs = I.sweep_images(digits, [0.05, 0.2], [0], hidden=16, epochs=3, device="cpu")
    again = I.train_mlp(digits, I.ImageConfig(noise=0.2, hidden=16, epochs=3, seed=0, device="cpu"))
    assert runs[1].history == again.history
    rows = I.epoch_rows(runs, epochs=[1, 2])
    assert [(r["noise"], r["epoch"]) for r in rows] == [(0.05, 1), (0.05, 2), (0.2, 1), (0.2, 2)]
    assert rows[3]["noisy_acc"] == again.at("noisy_acc", 2)


@pytest.mark.parametrize("call, message", [
    (lambda d: I.ImageConfig(noise=1.2), r"noise=1\.2 is not allowed; it must lie in \[0, 1\)"),
    (lambda d: I.ImageConfig(lr=float("nan")), r"lr=nan is not allowed; it must be a finite number"),
    (lambda d: I.ImageConfig(hidden=0), r"hidden=0 is not allowed; it must be an integer >= 1"),
    (lambda d: I.ImageConfig(optimizer="muon"), r"optimizer='muon' is not allowed; choose one of adam"),
    (lambda d: I.ImageConfig(epochs=2.5), r"epochs=2\.5 is not allowed"),
    (lambda d: I.load_images("cifar"), r"source='cifar' is not allowed; choose one of digits, mnist"),
    (lambda d: I.load_digits(test_frac=1.0), r"test_frac=1\.0 is not allowed; it must lie in \(0, 1\)"),
    (lambda d: I.noisy_image_labels(d.y_train, 10, 0.0001, 0), r"noise=0\.0001 is not allowed with 1258"),
    (lambda d: I.sweep_images(d, [], [0]), r"noises=\[\] is not allowed"),
    (lambda d: I.sweep_images(d, [0.1], [0], widht=3), r"unknown image run parameter\(s\) \['widht'\]"),
    (lambda d: I.train_mlp(d, I.ImageConfig(epochs=2)).at("noisy_acc", 5), r"epoch=5 is not allowed"),
])
def test_bad_input_is_one_line_naming_the_parameter(digits, call, message):
    with pytest.raises(ConfigError, match=message) as e:
        call(digits)
    assert "\n" not in str(e.value)


def test_setup_validates_and_loads(digits):
    S = I.setup_images("test", seeds=[0, 1])
    assert S.noises == I.PAPER_NOISES and S.seeds == (0, 1) and S.run["hidden"] == 64
    assert len(S.configs()) == 4 and "digits" in S.settings() and "2 seeds" in S.settings()
    with pytest.raises(ConfigError, match=r"seeds=\[-1\]|seed=-1 is not allowed"):
        I.setup_images("test", seeds=[-1])
    with pytest.raises(ConfigError, match=r"profile='huge' is not allowed"):
        I.setup_images("huge")
    with pytest.raises(ConfigError, match=r"noises=0\.2 is not allowed; give a non-empty list"):
        I.setup_images("test", noises=0.2)


def test_nothing_learned_nothing_reproduced():
    """With a learning rate too small to move the network, no claim about the runs is Reproduced,
    and the paper's own epoch-1 pair is Not shown (its noisy accuracy is at chance)."""
    S = I.setup_images("test", seeds=[0, 1, 2], lr=1e-9, epochs=2, hidden=16)
    runs = I.sweep_images(S.data, S.noises, S.seeds, **S.run)
    V = I.noise_first_verdicts(S, runs)
    assert [v.verdict for v in V["noise_first"] + [V["clean_ahead"]]].count("Reproduced") == 0
    assert V["paper"].verdict == "Not shown" and "not above chance" in V["paper"].evidence


def test_clean_subset_ahead_after_real_training(digits):
    S = I.setup_images("test", seeds=[0, 1, 2], lr=1e-2, epochs=3, hidden=64)
    V = I.noise_first_verdicts(S, I.sweep_images(S.data, S.noises, S.seeds, **S.run))
    assert V["clean_ahead"].verdict == "Reproduced"
    assert V["clean_ahead"].numbers["clean"] > 0.3


def test_core_module_needs_neither_scikit_learn_nor_the_book_stack():
    import subprocess
    import sys

    code = ("import sys\n"
            "class Refuse:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('sklearn', 'plotly', 'IPython', 'ipywidgets', 'yaml', 'papermill'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Refuse())\n"
            "import memgen.images as I\n"
            "try:\n"
            "    I.load_digits()\n"
            "except I.ConfigError as e:\n"
            "    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "source='digits' needs scikit-learn" in r.stdout


@pytest.mark.parametrize("kw, message", [
    (dict(data="cifar"), r"^data='cifar' is not allowed; choose one of digits, mnist$"),
    (dict(data="mnist"), r"^mnist_path=None is not allowed with data='mnist'"),
    (dict(data="mnist", mnist_path="/nonexistent/mnist"), r"^mnist_path='/nonexistent/mnist' is not allowed"),
])
def test_setup_names_the_chapter_parameters(kw, message, tmp_path, monkeypatch):
    monkeypatch.setattr(I, "DEFAULT_MNIST", tmp_path / "data" / "mnist")  # not fetched
    with pytest.raises(ConfigError, match=message):
        I.setup_images("test", **kw)


def test_setup_reads_the_fetched_mnist_when_no_folder_is_given(tmp_path, monkeypatch):
    monkeypatch.setattr(I, "DEFAULT_MNIST", tmp_path / "data" / "mnist")
    with pytest.raises(ConfigError, match=r"before `make mnist` has fetched MNIST"):
        I.setup_images("test", data="mnist")
    tiny_mnist(tmp_path / "data" / "mnist", n_train=40, n_test=5)
    S = I.setup_images("test", data="mnist")
    assert (S.data.n_train, S.data.n_test) == (40, 5) and "data/mnist" in S.data.source


def test_seed_plot_helpers_show_mean_and_range():
    from memgen.book import plots

    (tr,) = plots.seed_traces([0, 1, 2], {"a": np.array([[0.0, 1.0, np.nan], [1.0, 3.0, np.nan], [0.5, 2.0, 0.4]])})
    assert tr.y == (0.5, 2.0, 0.4)
    assert tr.error_y.array == (0.5, 1.0, 0.0) and tr.error_y.arrayminus == (0.5, 1.0, 0.0)
    fig = plots.seed_bars({"G": {"AdamW": [0.2, 0.4], "SGD": [0.1, 0.1]}}, "t", chance=1 / 59)
    assert fig.data[0].y == pytest.approx((0.3, 0.1))
    assert fig.layout.shapes[0].y0 == pytest.approx(1 / 59) and fig.layout.shapes[0].line.dash == "dash"
    assert list(fig.layout.yaxis.range) == [0, 1.05]
