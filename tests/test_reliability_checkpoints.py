"""Corrupt checkpoints: a checkpoint carries a sha256 of its tensors and plain data, checked on every load with every
floating-point tensor finite; a flipped bit (in a tensor, or in the pickle stream) is refused by resume, init-from
and predict with one error naming the file (never an UnpicklingError, a NaN prediction or a silently changed value),
and nothing already written is touched. Checkpoints written before the checksum existed still load. A campaign run
keeps two checkpoint files."""

from __future__ import annotations

import dataclasses
import random
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from paperlib.commands import predict as predict_command
from paperlib.commands import train as train_command
from paperlib.core.geometry import Geometry
from paperlib.engine import config as RC
from paperlib.engine import runs
from paperlib.engine import train as T
from paperlib.model import checkpoints as K
from paperlib.model import weights as W
from paperlib.model.sparsesync import build_model

# ---------------------------------------------------------------------------------------------------------------------
# a stand-in model and data set: a training run in a fraction of a second


@dataclasses.dataclass
class _ModelCfg:
    geometry: Geometry = dataclasses.field(default_factory=lambda: Geometry(num_classes=5))


@dataclasses.dataclass
class _DataCfg:
    iter_times: int = 1

    def validate(self, geo: Geometry) -> "_DataCfg":
        return self


class _Clips(Dataset):
    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.t = torch.randint(0, 5, (n,), generator=g)
        self.v, self.a = torch.randn(n, 2, 3, 4, 4, generator=g), torch.randn(n, 1, 4, 6, generator=g)

    def __len__(self):
        return len(self.t)

    def __getitem__(self, i):
        return {"video": self.v[i], "audio": self.a[i], "target": int(self.t[i])}


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 5)

    def forward(self, v, a):
        return self.lin(torch.stack([v.mean((1, 2, 3, 4)), a.mean((1, 2, 3))], 1))


def stand_in_fit(run_root: Path, **train) -> Path:
    tc = dict(num_workers=0, batch_size=8, base_lr=0.05, warmup_steps=2, progress=False, run_root=str(run_root),
              log_every=2, tensorboard=False, max_steps=2, test=False)
    cfg = RC.RunConfig(model=_ModelCfg(), data=_DataCfg(), train=T.TrainConfig(**{**tc, **train}))
    torch.manual_seed(0)
    data = {"train": _Clips(32, 0), "valid": _Clips(16, 1), "test": _Clips(16, 2)}
    return T.fit(cfg, model=_Net(), datasets=data)


# ---------------------------------------------------------------------------------------------------------------------
# flipping bits inside a torch zip file


def _entry_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """{entry name: (offset of its first byte in the file, size)} of the (uncompressed) entries of a torch file."""
    data = path.read_bytes()
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
            out[info.filename] = (info.header_offset + 30 + name_len + extra_len, info.file_size)
    return out


def flip_exponent_bits(path: Path) -> int:
    """Flip the top exponent bit of the first value of every storage in ``path`` whose first 4 bytes read as an
    ordinary float32 (in place); returns how many were hit. 0.1 becomes ~3e37: finite, so only the checksum can
    tell."""
    data = bytearray(path.read_bytes())
    hit = 0
    for name, (start, size) in _entry_offsets(path).items():
        if "/data/" not in name or size < 4 or size % 4:
            continue
        value = struct.unpack("<f", data[start:start + 4])[0]
        if not 1e-30 < abs(value) < 1e30:
            continue  # zeros, and storages that are not float32 values
        data[start + 3] ^= 0x40
        hit += 1
    path.write_bytes(bytes(data))
    return hit


def flip_bit(path: Path, entry_suffix: str, index: int, bit: int) -> Path:
    """A copy of ``path`` with one bit flipped in the entry ending in ``entry_suffix``."""
    start, size = next(v for k, v in _entry_offsets(path).items() if k.endswith(entry_suffix))
    data = bytearray(path.read_bytes())
    data[start + index % size] ^= 1 << bit
    out = path.with_name(f"{path.stem}.flip{index}-{bit}.pt")
    out.write_bytes(bytes(data))
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory):
    cfg = RC.resolve("smoke")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    K.save_checkpoint(path, build_model(cfg.model), cfg.model, run_config={"note": "smoke"})
    return path


def test_checkpoints_carry_a_checksum_and_old_ones_still_load(smoke_checkpoint, tmp_path):
    raw = torch.load(smoke_checkpoint, weights_only=True)
    stored = raw["meta"]["checksum"]
    assert stored["algorithm"] == "sha256" and stored["tensors"] == len(raw["model"])
    assert W.content_digest(raw) == stored  # the record itself is not part of what it covers
    # a checkpoint written before the checksum existed (no record) loads as before
    old = tmp_path / "old.pt"
    raw["meta"].pop("checksum")
    torch.save(raw, old)
    model, _ = K.load_model(old)
    assert all(torch.equal(v, raw["model"][k]) for k, v in model.state_dict().items())
    assert "checksum" not in W.load_checkpoint(old)["meta"]
    # ... but a non-finite tensor in it is refused all the same, naming the file and the tensor
    key = next(k for k, v in raw["model"].items() if v.is_floating_point() and v.numel() > 1)
    raw["model"][key] = raw["model"][key].clone()
    raw["model"][key].view(-1)[1] = float("nan")
    torch.save(raw, old)
    for load in (W.load_checkpoint, K.load_model):
        with pytest.raises(W.CheckpointError, match=rf"old\.pt: corrupt checkpoint: tensor 'model\.{key}' holds "
                                                    r"non-finite values"):
            load(old)


@pytest.mark.timeout(180)
def test_bit_flipped_checkpoint_is_refused_by_resume_init_from_and_predict(smoke_checkpoint, tmp_path, capsys):
    # a real run folder, its last.pt flipped in every float32 storage (model, Adam moments)
    run = stand_in_fit(tmp_path / "runs")
    last = run / runs.CHECKPOINT_DIR / "last.pt"
    assert flip_exponent_bits(last) >= 4
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    # resume (the command): one clear error naming the file, exit status 2, nothing in the run folder changed
    assert train_command.main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{last}: corrupt checkpoint: its content does not match the checksum" in err, err
    assert "Traceback" not in err
    # fit itself (what the campaign calls) refuses it too, after locking the folder and before touching a file
    with pytest.raises(W.CheckpointError, match="corrupt checkpoint"):
        stand_in_fit(tmp_path / "runs", max_steps=4, resume=str(run))
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == \
        {p: b for p, b in before.items() if p.name != ".lock"}

    # init-from: the same error, and no run folder is left behind
    with pytest.raises(W.CheckpointError, match=rf"{last}: corrupt checkpoint"):
        stand_in_fit(tmp_path / "finetune", init_from=str(last))
    assert not (tmp_path / "finetune").exists() or not any((tmp_path / "finetune").iterdir())

    # predict: a model checkpoint with its weights flipped is refused before any clip is read (exit status 2)
    bad = tmp_path / "predict_best.pt"
    bad.write_bytes(smoke_checkpoint.read_bytes())
    assert flip_exponent_bits(bad) >= 4
    assert predict_command.main([str(tmp_path / "clip.mp4"), "--checkpoint", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: corrupt checkpoint" in err and "p=nan" not in err and "Traceback" not in err, err


@pytest.mark.timeout(240)
def test_bit_flips_in_the_pickle_stream_are_refused_or_harmless(smoke_checkpoint, tmp_path):
    """A corpus of one-bit flips spread over the pickle stream (the structure, keys, plain values, the checksum
    record): every flip either fails with a CheckpointError naming the file or loads exactly the original content
    (a flip in a name the loader never reads); no other exception, no silently changed value."""
    original = torch.load(smoke_checkpoint, weights_only=True)
    _, size = next(v for k, v in _entry_offsets(smoke_checkpoint).items() if k.endswith("data.pkl"))
    rng = random.Random(0)
    positions = sorted(rng.sample(range(size), min(size, 150)))
    tried = refused = harmless = 0
    crashes = []
    for i in positions:
        path = flip_bit(smoke_checkpoint, "data.pkl", i, rng.randrange(8))
        for load in (W.load_checkpoint, lambda p: K.load_model(p)[0].state_dict()):
            tried += 1
            try:
                got = load(path)
            except W.CheckpointError as e:
                if str(path) in str(e):
                    refused += 1
                else:
                    crashes.append(f"byte {i}: message without the file: {e}")
                continue
            except Exception as e:  # noqa: BLE001 - any other exception is a crash
                crashes.append(f"byte {i}: {type(e).__name__}: {e}")
                continue
            want = original if isinstance(got, dict) and "meta" in got else original["model"]
            if isinstance(got, dict) and "meta" in got:
                got = {**got, "meta": {k: v for k, v in got["meta"].items() if k in original["meta"]}}
                got["meta"]["checksum"] = original["meta"]["checksum"]
            if _same(want, got):
                harmless += 1
            else:
                crashes.append(f"byte {i}: loaded with a changed value")
        path.unlink()
    print(f"\npickle-stream bit flips: {tried} loads tried, {refused} refused naming the file, {harmless} loaded "
          f"the original content, {len(crashes)} crashes")
    assert not crashes, crashes[:5]
    assert refused + harmless == tried and refused > tried // 2
