"""Failed writes and odd files: a full disk, ``ulimit -f`` and a read-only folder end in an error that names the file
and its cause first, the previous file intact and no large temporary left; an artefact's files are written as one set;
a symbolic link loop and a dangling link are named as such; a variable-frame-rate stream without an average rate
keeps its duration."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from paperlib.core import io as IO
from paperlib.core.media import MediaError, _stream_fps, probe

REPO = Path(__file__).resolve().parents[1]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial-" in p.name]


def test_a_full_disk_is_named_first_with_the_file_and_the_old_file_is_kept(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous checkpoint")
    # torch.save's own error: the errno text is buried after "unexpected pos"
    torch_text = ("[enforce fail at inline_container.cc:603] . unexpected pos 4096 vs 3985\n"
                  "PytorchStreamWriter failed writing file data/7: file write failed (No space left on device)")
    for error in (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), RuntimeError(torch_text)):
        with pytest.raises(OSError) as e:
            with IO.atomic_output(target) as tmp:
                tmp.write_bytes(b"x" * 5000)
                raise error
        assert e.value.errno == errno.ENOSPC
        assert str(e.value).startswith(f"[Errno 28] {target}: No space left on device while writing it; the previous "
                                       "last.pt (if any) is kept unchanged"), str(e.value)
        assert target.read_bytes() == b"previous checkpoint" and not _partials(tmp_path)
    # an error that is not a write failure passes unchanged
    with pytest.raises(KeyError):
        with IO.atomic_output(target):
            raise KeyError("not about the disk")


@pytest.mark.timeout(120)
def test_ulimit_f_names_the_checkpoint_and_keeps_the_previous_one(tmp_path):
    """A checkpoint larger than ``ulimit -f`` (RLIMIT_FSIZE) in a child process: the error names the file and "File
    too large"; the previous checkpoint is intact and the partial temporary is gone."""
    target = tmp_path / "checkpoints" / "last.pt"
    target.parent.mkdir()
    target.write_bytes(b"previous checkpoint")
    code = textwrap.dedent(f"""
        import resource, torch
        from torch import nn
        from paperlib.model.checkpoints import save_checkpoint
        from paperlib.engine import config as RC
        from paperlib.model.sparsesync import build_model
        cfg = RC.resolve("smoke")
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))
        try:
            save_checkpoint({str(target)!r}, build_model(cfg.model), cfg.model)
        except OSError as e:
            print("ERROR", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"ERROR [Errno 27] {target}: File too large while writing it" in out.stdout, out.stdout + out.stderr
    assert target.read_bytes() == b"previous checkpoint" and not _partials(target.parent)


def test_a_folder_turned_read_only_leaves_no_large_temporary(tmp_path, monkeypatch):
    """The rename and the removal of the temporary both refused (a folder made read-only mid-write; root ignores
    permission bits, so the refusals are injected): the error names the file, the temporary is emptied (its space
    freed), the previous file is kept, and the next writer in the folder removes the empty leftover."""
    target = tmp_path / "best.pt"
    target.write_bytes(b"previous")
    real_replace, real_unlink = os.replace, Path.unlink

    def refuse(*a, **kw):
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(a[0]))

    monkeypatch.setattr(IO.os, "replace", refuse)
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **kw: refuse(self))
    with pytest.raises(OSError, match=rf"^\[Errno 30\] {target}: Read-only file system while writing it"):
        IO.write_bytes_atomic(target, b"y" * 5_000_000)
    (left,) = _partials(tmp_path)
    assert left.stat().st_size == 0 and target.read_bytes() == b"previous"
    monkeypatch.setattr(IO.os, "replace", real_replace)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    # the writer's process is this one (alive): its leftover is kept until it is gone, then removed
    left.rename(left.with_name(left.name.replace(f".{os.getpid()}.", ".999999999.")))
    assert len(IO.remove_stale_partials(tmp_path, recursive=False)) == 1 and not _partials(tmp_path)


def test_an_artefact_is_written_as_one_set(tmp_path, monkeypatch):
    from paperlib.paper.report import Artefact, save_artefact

    def artefact(value: int) -> Artefact:
        tables = {"main": pd.DataFrame({"x": [value]}), "extra": pd.DataFrame({"y": [value]})}
        return Artefact(name="table9", profile="smoke", tables=tables, claims=[], notes=[], figures=[],
                        provenance={})

    written = save_artefact(artefact(1), tmp_path)
    before = {k: Path(v).read_text() for k, v in written.items()}
    assert len(before) == 4  # two csv, md, json
    # the third file fails (a full disk): none of the four is replaced
    real_open, calls = open, []

    def failing_open(file, mode="r", *a, **kw):
        if "w" in mode and ".partial-" in str(file):
            calls.append(file)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(OSError, match="No space left on device"):
        save_artefact(artefact(2), tmp_path)
    monkeypatch.setattr("builtins.open", real_open)
    assert {k: Path(v).read_text() for k, v in written.items()} == before
    assert not _partials(tmp_path / "tables")
    after = save_artefact(artefact(2), tmp_path)
    assert all("2" in Path(v).read_text() for k, v in after.items() if k.startswith("csv"))


def test_a_symbolic_link_loop_and_a_dangling_link_are_named(tmp_path):
    loop = tmp_path / "loop.mp4"
    os.symlink(loop, loop)
    with pytest.raises(MediaError, match=rf"{loop}: cannot open it \(a symbolic link loop\)"):
        probe(loop)
    dangling = tmp_path / "dangling.mp4"
    os.symlink(tmp_path / "gone.mp4", dangling)
    with pytest.raises(MediaError, match=rf"{dangling}: a symbolic link to {tmp_path / 'gone.mp4'}, which does not"):
        probe(dangling)
    with pytest.raises(MediaError, match=rf"{tmp_path / 'missing.mp4'}: no such file"):
        probe(tmp_path / "missing.mp4")


def test_a_variable_frame_rate_stream_without_an_average_rate_keeps_its_duration():
    """78 frames over 2.95 s, the shortest interval 20 ms: the guessed rate (50 fps) would make it a 1.56-s clip."""
    vfr = SimpleNamespace(average_rate=None, guessed_rate=Fraction(50), base_rate=Fraction(50), frames=78)
    fps = _stream_fps(vfr, 2.95)
    assert 78 / fps == pytest.approx(2.95)
    cfr = SimpleNamespace(average_rate=Fraction(25), guessed_rate=Fraction(25), base_rate=Fraction(25), frames=0)
    assert _stream_fps(cfr, 3.0) == 25.0
    unknown = SimpleNamespace(average_rate=None, guessed_rate=Fraction(30), base_rate=None, frames=0)
    assert _stream_fps(unknown, 0.0) == 30.0
