"""The authors' released SparseSync checkpoints: what each was trained on, where it is published, its checksum, and an
explicit download into the torch cache that verifies it.

Source: the authors' repository (v-iashin/SparseSync), ``utils/utils.py::FNAME2LINK`` and its README (ids, URLs,
test accuracies, the md5 prefixes they publish). Nothing here runs unless asked: :func:`fetch` is called only by
``python -m paperlib weights fetch NAME``; every other part of paperlib reads checkpoints from paths it is given.

A download goes to a hidden temporary beside its destination (:func:`paperlib.core.io.atomic_output`), its md5 is
computed while it streams, and it is renamed to the final name only when the md5 starts with the published prefix;
otherwise it is removed and :class:`ChecksumError` names the URL, the expected prefix and what arrived.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paperlib.core.io import atomic_output

BASE_URL = "https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/sync/sync_models"
BASE_URL_ENV = "PAPERLIB_WEIGHTS_URL"  # another base URL (a mirror; the tests' loopback server)
RELEASED_FILE_MB = 623  # each file, per the authors' older README: fp32 weights plus the Adam state (~3x the weights)


@dataclass(frozen=True)
class Released:
    """One released checkpoint."""

    name: str  # paperlib's short name
    id: str  # the authors' experiment id (their file is ``<id>/<id>.pt``)
    trained_on: str
    classes: int
    reported: str  # the test accuracy the authors report for it
    md5_prefix: str  # the prefix of the file's md5 the authors publish

    def url(self, base: str | None = None) -> str:
        base = (base or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/")
        return f"{base}/{self.id}/{self.id}.pt"


RELEASED: dict[str, Released] = {r.name: r for r in (
    Released("lrs3-3cls", "22-07-18T08-00-00", "LRS3 'No Face Crop'", 3, "95.5 Acc@1 (LRS3-NFC)", "56876db"),
    Released("lrs3-21cls", "22-07-13T22-25-49", "LRS3 'No Face Crop'", 21, "96.9 Acc@1 +-1 cls (LRS3-NFC)",
             "63f883e"),
    Released("vggsound-sparse-3cls", "22-08-13T21-55-03", "LRS3-NFC, then VGGSound-Sparse", 3,
             "60.3 Acc@1 (VGGSound-Sparse)", "08bb68a"),
    Released("vggsound-sparse-21cls", "22-07-28T15-49-45", "LRS3-NFC, then VGGSound-Sparse", 21,
             "44.3 Acc@1 +-1 cls (VGGSound-Sparse)", "a26f207"),
    Released("vggsound-21cls", "22-09-21T21-00-52", "LRS3-NFC, then all of VGGSound", 21,
             "51.2 Acc@1 +-1 cls (VGGSound-Sparse test)", "83fba5f"),
    Released("audioset-21cls", "23-02-26T22-31-22", "LRS3-NFC, then AudioSet", 21,
             "56.7 Acc@1 +-1 cls (VGGSound-Sparse test)", "d3c40b4"),
)}


class ChecksumError(ValueError):
    """A downloaded file whose md5 does not start with the published prefix (nothing is kept)."""


def lookup(name: str) -> Released:
    """A released checkpoint by paperlib name or by the authors' id; KeyError listing both otherwise."""
    for r in RELEASED.values():
        if name in (r.name, r.id):
            return r
    listing = ", ".join(f"{r.name} ({r.id})" for r in RELEASED.values())
    raise KeyError(f"no released checkpoint {name!r}; choose from {listing}")


def cache_dir() -> Path:
    """``<torch hub dir>/checkpoints/sparsesync``: torch's cache (``$TORCH_HOME``, default ``~/.cache/torch``)."""
    from paperlib.model.weights import torch_cache_checkpoints

    return torch_cache_checkpoints() / "sparsesync"


def md5_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name: str, dest_dir: str | os.PathLike | None = None, base_url: str | None = None,
          progress: Callable[[int, int | None], None] | None = None, timeout_s: float = 60.0) -> Path:
    """Download the released checkpoint ``name`` to ``dest_dir/<id>.pt`` (default :func:`cache_dir`) and verify its
    md5 prefix; return the path. A file already there with the right checksum is kept (no download).

    ``progress(done_bytes, total_bytes_or_None)`` is called as the download streams. Raises :class:`ChecksumError`
    (nothing written) on a checksum mismatch and ``OSError`` naming the URL when the download fails."""
    entry = lookup(name)
    dest = Path(dest_dir) if dest_dir is not None else cache_dir()
    path = dest / f"{entry.id}.pt"
    if path.is_file() and md5_of(path).startswith(entry.md5_prefix):
        return path
    url = entry.url(base_url)
    try:
        response = urllib.request.urlopen(url, timeout=timeout_s)  # noqa: S310 (https, or the given base URL)
    except (urllib.error.URLError, OSError) as e:
        raise OSError(f"could not download {url}: {getattr(e, 'reason', e)}") from e
    with response, atomic_output(path) as tmp:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        h, done = hashlib.md5(), 0
        with open(tmp, "wb") as f:
            while block := response.read(1 << 20):
                f.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise OSError(f"{url}: the download stopped at {done} of {total} bytes")
        digest = h.hexdigest()
        if not digest.startswith(entry.md5_prefix):
            raise ChecksumError(f"{url}: md5 {digest} does not start with the published {entry.md5_prefix} "
                                f"({entry.name}); the file was not kept")
    return path
