"""The checkpoint file format shared by the run store and the training loop.

A file is a magic line, the SHA-256 of the payload, then the payload (``torch.save`` bytes).
:func:`atomic_save` writes to a temporary name in the same folder, flushes it to disk and renames
it into place (``os.replace`` is atomic), so a crash never leaves a half-written file;
:func:`checked_load` verifies the checksum and raises :class:`StoreError` on any damage.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

MAGIC = b"MEMGEN-RUN 1\n"
#: Bytes before the payload: MAGIC, the payload's SHA-256 in hex and a newline.
HEADER = len(MAGIC) + 65
#: A temporary file of :func:`atomic_save` older than this (seconds) belongs to a writer that died
#: (a save takes seconds); :func:`remove_stale_temps` removes it.
STALE_TMP_SECONDS = 300


class StoreError(RuntimeError):
    """A store file is missing its header, truncated or fails its checksum."""


def atomic_save(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` (torch-serialisable) with a checksum header, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; missing parent folders are created.
    obj : Any
        What to save with ``torch.save``.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + digest + b"\n" + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def checked_load(path: str | os.PathLike) -> Any:
    """Load a file written by :func:`atomic_save`; raise :class:`StoreError` if it is damaged.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    Any
        The saved object (loaded with ``weights_only=True``).

    Raises
    ------
    StoreError
        When the header is missing, the checksum does not match or the payload is unreadable.
    """
    raw = Path(path).read_bytes()
    head = HEADER
    if not raw.startswith(MAGIC) or len(raw) < head or raw[head - 1:head] != b"\n":
        raise StoreError(f"{path}: not a memgen store file (bad header)")
    digest, payload = raw[len(MAGIC):head - 1], raw[head:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise StoreError(f"{path}: checksum mismatch (truncated or corrupt)")
    try:
        return torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as e:  # pragma: no cover - checksum already guards this
        raise StoreError(f"{path}: unreadable payload ({e})") from e


def stored_digest(path: str | os.PathLike) -> str | None:
    """The SHA-256 a file written by :func:`atomic_save` names in its header (the payload is not
    read or checked).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str or None
        The hex digest; None when the file is missing, unreadable or has no such header.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER)
    except OSError:
        return None
    ok = head.startswith(MAGIC) and len(head) == HEADER and head.endswith(b"\n")
    return head[len(MAGIC):-1].decode() if ok else None


def remove_stale_temps(root: str | os.PathLike, older_than: float = STALE_TMP_SECONDS) -> list[Path]:
    """Remove the temporary files :func:`atomic_save` left under ``root`` when its process was
    killed mid-save (``.<name>.*.tmp`` not modified for ``older_than`` seconds).

    Younger ones are kept: they may belong to a writer that is still saving.

    Parameters
    ----------
    root : str or os.PathLike
        The folder searched, recursively.
    older_than : float, default=STALE_TMP_SECONDS
        Age in seconds (since the last modification) beyond which a temporary file is stale.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    now = time.time()
    for tmp in Path(root).rglob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process removed or renamed it meanwhile
            pass
    return removed
