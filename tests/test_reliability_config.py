"""Bad run configurations and bad ``--resume`` paths: one check before any folder is made. Each bad ``train --config``
file (NaN, negative or infinite lr, an unknown variant, batch 0 or -4, dropout 1.5, a top-level array, max_steps 0 or
-5, a NaN clip_grad_norm, ...) is refused with exit status 2 and one message naming the file, the key and the allowed
range; nothing is written (no run folder). ``--resume`` takes a run folder or a checkpoint in a run's
``checkpoints/``; anything else is refused and nothing is written next to the given file."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from test_reliability_checkpoints import stand_in_fit

from paperlib.commands import train as train_command
from paperlib.core.config import to_dict
from paperlib.engine import config as RC
from paperlib.engine import runs


def _valid(tmp_path: Path) -> dict:
    """A resolved smoke config (what the campaign writes) whose runs would go to ``tmp_path/runs``."""
    return to_dict(RC.resolve("smoke", [f"data.root={tmp_path / 'data'}", f"train.run_root={tmp_path / 'runs'}"]))


def _set(key: str, value):
    def edit(cfg: dict) -> dict:
        section, name = key.split(".", 1)
        cfg[section][name] = value
        return cfg
    return edit


# (id, edit of the valid config, words the message must hold besides the file)
BAD_CONFIGS = [
    ("lr_nan", _set("train.base_lr", math.nan), ["train.base_lr", "nan", "finite number > 0"]),
    ("lr_negative", _set("train.base_lr", -1e-3), ["train.base_lr", "-0.001", "finite number > 0"]),
    ("lr_inf", _set("train.base_lr", math.inf), ["train.base_lr", "inf", "finite number > 0"]),
    ("lr_zero", _set("train.base_lr", 0.0), ["train.base_lr", "finite number > 0"]),
    ("unknown_variant", _set("model.variant", "sparsesyncc"), ["model.variant", "'sparsesyncc'", "unknown variant",
                                                               "sparsesync", "avst_dec"]),
    ("batch_0", _set("train.batch_size", 0), ["train.batch_size = 0", ">= 1"]),
    ("batch_-4", _set("train.batch_size", -4), ["train.batch_size = -4", ">= 1"]),
    ("dropout_1.5", _set("model.attn_pdrop", 1.5), ["model.attn_pdrop = 1.5", ">= 0 and < 1"]),
    ("top_level_array", lambda cfg: [cfg], ["must be a JSON object", "got an array"]),
    ("max_steps_0", _set("train.max_steps", 0), ["train.max_steps = 0", ">= 1 (or null)"]),
    ("max_steps_-5", _set("train.max_steps", -5), ["train.max_steps = -5", ">= 1 (or null)"]),
    ("clip_nan", _set("train.clip_grad_norm", math.nan), ["train.clip_grad_norm", "nan", "finite number >= 0"]),
    ("unknown_key", _set("train.learning_rate", 0.1), ["unknown config key", "learning_rate"]),
    ("wrong_type", _set("train.batch_size", "eight"), ["train.batch_size", "eight"]),
    ("not_json", None, ["not valid JSON"]),
]


@pytest.mark.parametrize("name,edit,words", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_each_bad_config_is_one_clear_error_with_nothing_written(name, edit, words, tmp_path, capsys):
    path = tmp_path / "config.json"
    if edit is None:
        path.write_text('{"train": {"base_lr": 0.1,}}')
    else:
        path.write_text(json.dumps(edit(_valid(tmp_path))))  # NaN / Infinity as Python's json writes them
    assert train_command.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paperlib train: {path}: "), err
    assert "Traceback" not in err and all(w in err for w in words), (words, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no run folder, no data folder


def test_every_problem_is_named_at_once_and_a_valid_config_passes(tmp_path):
    cfg = _valid(tmp_path)
    assert RC.check_run_config(RC.read_run_config(_write(tmp_path / "ok.json", cfg)))
    for key, value in (("train.base_lr", -1.0), ("train.batch_size", 0), ("model.embd_pdrop", 1.0),
                       ("train.warmup_start_factor", 0.0)):
        _set(key, value)(cfg)
    with pytest.raises(ValueError) as e:
        RC.load_run_config(_write(tmp_path / "bad.json", cfg))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'bad.json'}: invalid run configuration (4 problems)"), msg
    for key in ("train.base_lr = -1.0", "train.batch_size = 0", "model.embd_pdrop = 1.0",
                "train.warmup_start_factor = 0.0: must be a finite number > 0 and <= 1"):
        assert key in msg, msg
    # overrides on the command line are checked the same way, before anything is written
    with pytest.raises(ValueError, match=r"train\.clip_grad_norm = inf"):
        RC.resolve("smoke", ["train.clip_grad_norm=inf"])


def _write(path: Path, cfg) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def test_resume_outside_a_run_folder_is_refused_and_writes_nothing(tmp_path, capsys):
    run = stand_in_fit(tmp_path / "runs", max_steps=2)
    last = run / runs.CHECKPOINT_DIR / "last.pt"
    # a real training checkpoint copied somewhere else: resuming it would write into /x/ (results, metrics, ...)
    evil = tmp_path / "x" / "evil" / "file.pt"
    evil.parent.mkdir(parents=True)
    shutil.copy2(last, evil)
    # a checkpoints/ folder that is not inside a run folder (no config.json next to it)
    orphan = tmp_path / "y" / runs.CHECKPOINT_DIR / "last.pt"
    orphan.parent.mkdir(parents=True)
    shutil.copy2(last, orphan)
    for path, words in ((evil, ["not inside a run directory's checkpoints/", "--init-from"]),
                        (orphan, [f"{orphan.parent.parent} is not a paperlib run directory (no config.json)"]),
                        (tmp_path / "x", ["no checkpoints/last.pt to resume from"]),
                        (tmp_path / "nowhere.pt", ["checkpoint not found"])):
        assert train_command.main(["--resume", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"paperlib train: {path}: ") and all(w in err for w in words), err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "x").rglob("*")) == \
        ["x/evil", "x/evil/file.pt"]
    assert sorted(p.name for p in orphan.parent.parent.iterdir()) == [runs.CHECKPOINT_DIR]
    # the run's own checkpoint, given as a file inside its checkpoints/, is accepted
    from paperlib.engine.checkpointing import resume_checkpoint_path
    assert resume_checkpoint_path(last) == last and resume_checkpoint_path(run) == last
