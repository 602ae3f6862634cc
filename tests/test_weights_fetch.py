"""``python -m paperlib weights fetch NAME`` against an HTTP server on the loopback address serving a file this test
wrote: it downloads into the torch cache with a progress bar, verifies the published md5 prefix, keeps a verified file
without downloading again, and refuses a file with another checksum (nothing kept)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading

import pytest

from paperlib.commands import main
from paperlib.model import released


@pytest.fixture()
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path/www``, counting its GET requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def _publish(root, entry, data: bytes):
    (root / entry.id).mkdir(exist_ok=True)
    (root / entry.id / f"{entry.id}.pt").write_bytes(data)


def test_fetch_downloads_verifies_and_refuses_a_bad_checksum(server, tmp_path, monkeypatch, capsys):
    root, url, hits = server
    data = bytes(range(256)) * 5000  # 1.28 MB, more than one read block
    entry = dataclasses.replace(released.RELEASED["vggsound-sparse-21cls"],
                                md5_prefix=hashlib.md5(data).hexdigest()[:7])
    monkeypatch.setitem(released.RELEASED, entry.name, entry)
    monkeypatch.setenv(released.BASE_URL_ENV, url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _publish(root, entry, data)

    assert main(["weights", "fetch", "vggsound-sparse-21cls"]) == 0
    out, err = capsys.readouterr()
    path = tmp_path / "torch" / "hub" / "checkpoints" / "sparsesync" / f"{entry.id}.pt"
    assert out.strip() == str(path) and path.read_bytes() == data
    assert "vggsound-sparse-21cls: 100%" in err and "1.22M" in err  # the progress bar, in bytes
    assert hits == [f"/{entry.id}/{entry.id}.pt"]

    # by the authors' id too; a verified file is not downloaded again
    assert main(["weights", "fetch", entry.id]) == 0
    assert len(hits) == 1

    # a file whose md5 does not start with the published prefix: refused, nothing kept, the old file untouched
    other = dataclasses.replace(released.RELEASED["lrs3-21cls"], md5_prefix=entry.md5_prefix)
    monkeypatch.setitem(released.RELEASED, other.name, other)
    _publish(root, other, data + b"tampered")
    assert main(["weights", "fetch", "lrs3-21cls", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{url}/{other.id}/{other.id}.pt: md5 " in err and f"does not start with the published " \
        f"{entry.md5_prefix} (lrs3-21cls); the file was not kept" in err
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

    # a missing file: the URL named
    missing = dataclasses.replace(released.RELEASED["audioset-21cls"], md5_prefix="0000000")
    monkeypatch.setitem(released.RELEASED, missing.name, missing)
    assert main(["weights", "fetch", "audioset-21cls", "--no-progress", "--dest", str(tmp_path / "d")]) == 1
    assert f"could not download {url}/{missing.id}/{missing.id}.pt" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_the_table_holds_the_published_checksums_and_names_are_checked():
    assert {r.id: r.md5_prefix for r in released.RELEASED.values()} == {
        "22-07-18T08-00-00": "56876db", "22-07-13T22-25-49": "63f883e", "22-08-13T21-55-03": "08bb68a",
        "22-07-28T15-49-45": "a26f207", "22-09-21T21-00-52": "83fba5f", "23-02-26T22-31-22": "d3c40b4"}
    assert released.RELEASED["lrs3-21cls"].url("http://x/") == "http://x/22-07-13T22-25-49/22-07-13T22-25-49.pt"
    with pytest.raises(KeyError, match="no released checkpoint 'sparse'; choose from lrs3-3cls"):
        released.lookup("sparse")


def test_nothing_downloads_implicitly():
    """Only the weights command calls the download (predict only finds a fetched file by name)."""
    import re
    from pathlib import Path

    pkg = Path(released.__file__).resolve().parents[1]
    callers = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                     if re.search(r"released\.fetch\(", p.read_text()) and p.name != "released.py")
    assert callers == ["commands/weights.py"]


def test_predict_takes_a_fetched_released_checkpoint_by_name(server, tmp_path, monkeypatch, capsys):
    from paperlib.commands import predict as predict_command

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert predict_command.main(["clip.mp4", "--checkpoint", "vggsound-sparse-21cls"]) == 2
    err = capsys.readouterr().err
    assert "the released checkpoint vggsound-sparse-21cls (22-07-28T15-49-45) is not in" in err
    assert "python -m paperlib weights fetch vggsound-sparse-21cls" in err
    _, _, hits = server
    assert hits == []  # nothing downloaded
    path = released.cache_dir() / "22-07-28T15-49-45.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    assert predict_command.released_path("22-07-28T15-49-45") == str(path)
    assert predict_command.released_path("vggsound-sparse-21cls") == str(path)
    assert predict_command.released_path("some/file.pt") == "some/file.pt"
