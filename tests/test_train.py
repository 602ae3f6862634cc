"""Training engine (paperlib.engine.train and its modules, paperlib.engine.runs, RunConfig presets): pure pieces, run
directories, resume equality (weights and metrics.jsonl), fine-tuning, sanity tools, progress, and a smoke training on
generated clips through train -> valid -> test."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from paperlib.core import config as C
from paperlib.core.geometry import Geometry
from paperlib.core.provenance import env_info
from paperlib.engine import checkpointing as CK
from paperlib.engine import config as RC
from paperlib.engine import loop as L
from paperlib.engine import runs
from paperlib.engine import train as T
from paperlib.commands import train as train_command

# ---------------------------------------------------------------------------------------------------------------------
# pure pieces


def test_lr_factor_matches_official_sequential_lr():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=1000)
    const = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, const], milestones=[1000])
    for step in range(1200):
        assert opt.param_groups[0]["lr"] == pytest.approx(T.lr_factor(step, 1000, 0.01), rel=1e-9, abs=1e-12), step
        opt.step()
        sched.step()
    assert T.lr_factor(0) == 0.01 and T.lr_factor(500) == pytest.approx(0.505) and T.lr_factor(10**6) == 1.0
    assert T.lr_factor(3, warmup_steps=0) == 1.0
    with pytest.raises(ValueError):
        T.lr_factor(-1)


def test_precision_and_eps_resolution():
    cpu = torch.device("cpu")
    assert T.resolve_precision("auto", cpu) == "fp32"
    assert T.resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    with pytest.raises(ValueError, match="CUDA"):
        T.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision"):
        T.resolve_precision("fp8", cpu)
    tc = T.TrainConfig()
    assert T.adam_eps(tc, "fp32") == 1e-8 and T.adam_eps(tc, "fp16") == 1e-7 and T.adam_eps(tc, "bf16") == 1e-7
    assert tc.betas == (0.9, 0.999) and tc.base_lr == 5e-6 and tc.batch_size == 10 and tc.clip_grad_norm == 1.0
    assert tc.warmup_steps == 1000 and tc.warmup_start_factor == 0.01 and tc.early_stop_metric == "accuracy_1"


def test_plateau_detector_warns_with_time_spent_and_records_leaving():
    det = T.PlateauDetector(21, rel_tol=0.05, warn_steps=100, warn_seconds=1e9)
    lnc = math.log(21)
    msgs = [det.update(s, lnc + 0.01, s * 0.5) for s in range(0, 401, 10)]
    fired = [i * 10 for i, m in enumerate(msgs) if m]
    assert fired == [100, 200, 400]  # then at doubling step counts
    assert "ln(21)" in msgs[10] and "100 steps" in msgs[10] and "0.8 min" in msgs[10]
    assert det.update(410, 0.7 * lnc, 205.0) is None
    assert det.left_at_step == 410 and det.left_after_s == 205.0
    # time-based warning
    det = T.PlateauDetector(3, warn_steps=10**9, warn_seconds=60)
    assert det.update(1, math.log(3), 10.0) is None
    assert "min" in det.update(2, math.log(3), 75.0)
    # a clearly-learning loss never warns
    det = T.PlateauDetector(3, warn_steps=1, warn_seconds=0)
    assert all(det.update(s, 0.2, s) is None for s in range(20))


def test_rng_state_roundtrip_is_weights_only_loadable(tmp_path):
    T.seed_everything(5)
    state = T.rng_state()
    torch.save({"rng": state}, tmp_path / "r.pt")
    a = (random.random(), float(np.random.rand()), float(torch.rand(())))
    T.set_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == a


def test_epoch_batches_partition_and_determinism():
    world = 2
    parts = [T.epoch_batches(23, 4, epoch=3, seed=1, dinfo=T.DistInfo(r, world)) for r in range(world)]
    flat = [i for p in parts for b in p for i in b]
    assert len(parts[0]) == len(parts[1])  # equal step counts on every rank
    assert set(flat) <= set(range(23)) and len(set(flat)) >= 16
    assert parts == [T.epoch_batches(23, 4, 3, 1, T.DistInfo(r, world)) for r in range(world)]
    assert T.epoch_batches(23, 4, 4, 1, T.DistInfo()) != T.epoch_batches(23, 4, 3, 1, T.DistInfo())
    one = T.epoch_batches(10, 4, 0, 0, T.DistInfo())
    assert [len(b) for b in one] == [4, 4]  # a ragged last batch is dropped when full batches exist
    assert [len(b) for b in T.epoch_batches(3, 4, 0, 0, T.DistInfo())] == [3]


def test_set_train_mode_keeps_frozen_modules_in_eval():
    model = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    L.set_train_mode(model)
    assert model.training and model[1].training and not model[0].training


def test_run_dirs_never_overwritten(tmp_path):
    a = runs.new_run_dir(tmp_path, "x", stamp="s")
    b = runs.new_run_dir(tmp_path, "x", stamp="s")
    assert a != b and a.is_dir() and b.is_dir() and b.name == "x-s-1"
    with pytest.raises(ValueError):
        runs.new_run_dir(tmp_path, "../x")
    env = env_info("cpu")
    for key in ("git", "torch", "torchvision", "torchaudio", "av", "ffmpeg", "device", "host"):
        assert key in env, key
    assert set(env["git"]) == {"sha", "dirty", "root"}
    assert "libavcodec" in env["ffmpeg"]


def test_metrics_logger_and_torn_lines(tmp_path):
    with runs.MetricsLogger(tmp_path, tensorboard=False) as lg:
        lg.log({"phase": "train", "step": 1, "loss": 1.5})
        lg.log({"phase": "valid", "step": 1, "accuracy_1": float("nan")})
    with open(tmp_path / runs.METRICS_FILE, "a") as f:
        f.write('{"phase": "train", "st')  # a writer killed mid-line
    recs = runs.read_metrics(tmp_path)
    assert [r["phase"] for r in recs] == ["train", "valid"] and recs[1]["accuracy_1"] is None
    assert runs.read_metrics(tmp_path, "train")[0]["loss"] == 1.5


def test_presets_and_overrides():
    cfg = RC.resolve("paper-lrs3")
    assert cfg.geometry.num_classes == 21 and cfg.train.base_lr == 5e-6 and cfg.data.dataset == "lrs3"
    ft = RC.resolve("paper-vggsound-sparse-finetune-3cls", ["train.init_from=/x.pt", "train.patience=70"])
    assert ft.geometry.num_classes == 3 and ft.geometry.max_off_sec == 1.0
    assert ft.data.p_audio_aug == 0.2 and ft.data.iter_times == 25 and ft.train.init_from == "/x.pt"
    assert ft.train.patience == 70
    with pytest.raises(KeyError, match="unknown config key"):
        RC.resolve("smoke", ["train.learning_rate=1"])
    with pytest.raises(ValueError, match="infeasible"):  # the data must fit the run's one geometry
        RC.resolve("smoke", ["data.min_clip_sec=2.0"])
    with pytest.raises(KeyError, match="unknown config key"):  # the geometry lives in one place only
        RC.resolve("smoke", ["data.num_classes=21"])
    with pytest.raises(KeyError, match="unknown preset"):
        RC.resolve("nope")
    for name in RC.PRESETS:  # every preset resolves to a consistent config
        RC.resolve(name)
    back = C.from_dict(RC.RunConfig, C.to_dict(cfg))
    assert back == cfg


# ---------------------------------------------------------------------------------------------------------------------
# stand-in model and data (fast engine invariants)


@dataclasses.dataclass
class _MC:
    geometry: Geometry = dataclasses.field(default_factory=lambda: Geometry(num_classes=5))


@dataclasses.dataclass
class _DC:
    iter_times: int = 1

    def validate(self, geo: Geometry) -> "_DC":
        return self


class _DS(Dataset):
    def __init__(self, n: int, seed: int, fail_at: int | None = None):
        g = torch.Generator().manual_seed(seed)
        self.t = torch.randint(0, 5, (n,), generator=g)
        self.v = torch.randn(n, 2, 3, 4, 4, generator=g)
        self.a = torch.randn(n, 1, 4, 6, generator=g) + self.t[:, None, None, None].float()
        self.fail_at, self.calls = fail_at, 0

    def __len__(self):
        return len(self.t)

    def __getitem__(self, i):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated kill")
        return {"video": self.v[i], "audio": self.a[i], "target": int(self.t[i]), "label": f"c{i % 3}"}


class _M(nn.Module):
    def __init__(self, nan: bool = False):
        super().__init__()
        self.bn, self.lin, self.drop, self.nan = nn.BatchNorm1d(2), nn.Linear(2, 5), nn.Dropout(0.3), nan

    def forward(self, v, a):
        x = torch.stack([v.mean((1, 2, 3, 4)), a.mean((1, 2, 3))], 1)  # (B, 2)
        out = self.lin(self.drop(self.bn(x)))
        return out * float("nan") if self.nan else out


def _cfg(root, **kw):
    tc = dict(num_workers=0, batch_size=8, base_lr=0.05, warmup_steps=5, progress=False, run_root=str(root),
              log_every=2, tensorboard=False)
    return RC.RunConfig(model=_MC(), data=_DC(), train=T.TrainConfig(**{**tc, **kw}))


def _fit(cfg, fail_at=None, nan=False):
    torch.manual_seed(0)
    data = {"train": _DS(64, 0, fail_at), "valid": _DS(20, 1), "test": _DS(20, 2)}
    return T.fit(cfg, model=_M(nan), datasets=data)


def _weights(run_dir: Path, name: str = "last") -> dict:
    return torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["state"]["step"] == b["state"]["step"]


def test_killed_run_resumes_to_identical_weights(tmp_path):
    full = _fit(_cfg(tmp_path, max_steps=20))
    # killed while loading the 14th batch of step 14 (after the periodic checkpoint of step 12)
    with pytest.raises(KeyboardInterrupt):
        _fit(_cfg(tmp_path, max_steps=20, checkpoint_every_steps=4), fail_at=13 * 8 + 1)
    killed = runs.list_runs(tmp_path)[-1]
    assert _weights(killed)["state"]["step"] == 12
    cfg = _cfg(tmp_path, max_steps=20, checkpoint_every_steps=4)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=str(killed)))
    resumed = _fit(cfg)
    assert resumed == killed  # same run directory, appended
    _assert_same_weights(_weights(full), _weights(resumed))
    # a resumed run keeps the hash of its own config (the resume path is not part of what the run is)
    plain = _cfg(tmp_path, max_steps=20, checkpoint_every_steps=4)
    assert json.loads((resumed / runs.RESULTS_FILE).read_text())["config_hash"] == C.config_hash(plain)
    events = [r for r in runs.read_metrics(resumed, "event") if r.get("event") == "resume"]
    assert len(events) == 1 and events[0]["step"] == 12


def _records(run: Path, phase: str) -> list[dict]:
    """A phase's records without their wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("time", "elapsed_s")} for r in runs.read_metrics(run, phase)]


def test_resumed_run_logs_each_step_once(tmp_path):
    """Killed after steps past its last checkpoint were logged: once resumed, metrics.jsonl holds every step once, and
    its train/valid/test records are an uninterrupted run's (the resume event comes on top)."""
    kw = dict(max_steps=20, checkpoint_every_steps=4, log_every=1)
    full = _fit(_cfg(tmp_path / "full", **kw))
    with pytest.raises(KeyboardInterrupt):  # killed loading step 15's batch: steps 13 and 14 are logged, not saved
        _fit(_cfg(tmp_path / "killed", **kw), fail_at=14 * 8 + 1)
    (killed,) = runs.list_runs(tmp_path / "killed")
    assert _weights(killed)["state"]["step"] == 12
    assert [r["step"] for r in runs.read_metrics(killed, "train")][-2:] == [13, 14]
    resumed = _fit(_cfg(tmp_path / "killed", **kw, resume=str(killed)))
    assert [r["step"] for r in runs.read_metrics(resumed, "train")] == list(range(1, 21))
    for phase in ("train", "valid", "test"):
        assert _records(resumed, phase) == _records(full, phase), phase
    assert [r["step"] for r in runs.read_metrics(resumed, "event") if r.get("event") == "resume"] == [12]


def test_run_killed_in_its_final_evaluation_logs_it_once(tmp_path):
    """last.pt is saved before the final valid/test; a run killed in them evaluates again on resume, and the log keeps
    one record of each."""
    cfg = _cfg(tmp_path, max_steps=20)
    torch.manual_seed(0)
    data = {"train": _DS(64, 0), "valid": _DS(20, 1), "test": _DS(20, 2, fail_at=5)}
    with pytest.raises(KeyboardInterrupt):
        T.fit(cfg, model=_M(), datasets=data)
    (run,) = runs.list_runs(tmp_path)
    assert [r["step"] for r in runs.read_metrics(run, "valid")] == [8, 16, 20] and not runs.read_metrics(run, "test")
    resumed = _fit(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=str(run))))
    assert [r["step"] for r in runs.read_metrics(resumed, "valid")] == [8, 16, 20]
    assert [r["step"] for r in runs.read_metrics(resumed, "test")] == [20]


def test_progress_counts_the_time_budget_when_one_is_set():
    """A time-budgeted run (e.g. 10 minutes with the default step cap) shows minutes of its budget, with the steps in
    the postfix, not a step count it will never reach; other runs show steps."""
    plan = L.progress_plan(max_steps=300_000, time_budget_min=10.0, epochs=10_000, steps_per_epoch=50)
    assert plan == L.ProgressPlan(10.0, "min")
    assert L.progress_plan(None, 10.0, 10_000, 50) == L.ProgressPlan(10.0, "min")
    assert L.progress_plan(300, None, 10_000, 50) == L.ProgressPlan(300, "step")
    assert L.progress_plan(None, None, 4, 50) == L.ProgressPlan(200, "step")
    assert L.progress_plan(None, None, 10**6, 50).total is None  # no total rather than a wrong one
    bar = L.Progress(plan, "train x", step=0, elapsed_s=0.0, max_steps=300_000)
    bar.advance(step=1234, elapsed_s=150.0)
    text = str(bar.bar)
    bar.close()
    assert "2.5/10.0 min" in text and "step=1234/300000" in text, text


def test_nonfinite_loss_raises_with_the_loss(tmp_path):
    with pytest.raises(FloatingPointError, match=r"non-finite training loss nan at step 1"):
        _fit(_cfg(tmp_path, max_steps=3), nan=True)


def test_overfit_batches_mode_validates_on_the_same_batch(tmp_path):
    run = _fit(_cfg(tmp_path, overfit_batches=1, epochs=40, warmup_steps=0, base_lr=0.1))
    valid = runs.read_metrics(run, "valid")
    assert len(valid) == 40 and all(r["n"] == 8 for r in valid)  # one batch of 8, every epoch
    assert valid[-1]["loss"] < valid[0]["loss"]
    assert not runs.read_metrics(run, "test")  # no test in sanity mode


FROZEN_LR = 1e-12  # a learning rate too small to move float32 weights (the config check refuses lr 0)


def test_early_stopping_and_eval_every(tmp_path):
    run = _fit(_cfg(tmp_path, eval_every_steps=3, patience=2, base_lr=FROZEN_LR, epochs=100))
    res = json.loads((run / runs.RESULTS_FILE).read_text())
    # patience 2: the run ends two evaluations (6 steps) after its best one
    assert res["stop_reason"] == "early_stopping" and res["steps"] - res["best_step"] == 6
    steps = [r["step"] for r in runs.read_metrics(run, "valid")]
    assert steps == list(range(3, res["steps"] + 1, 3))


# ---------------------------------------------------------------------------------------------------------------------
# the real small model on generated clips


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from paperlib.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth-dense32")
    generate(SynthConfig(setting="dense-crop", size=32), root, clips=24, progress=False)
    return root


def _smoke(root, run_root, *overrides, device="cpu"):
    return RC.resolve("smoke", [f"data.root={root}", f"train.run_root={run_root}", "train.progress=false",
                               f"train.device={device}", *overrides])


def test_smoke_training_train_valid_test_all_metrics(synth_root, tmp_path):
    cfg = _smoke(synth_root, tmp_path, "train.max_steps=6", "train.tensorboard=true")
    run = T.fit(cfg)
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "env.json", "metrics.jsonl", "results.json", "checkpoints"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert C.from_dict(RC.RunConfig, json.loads((run / "config.json").read_text())) == cfg
    env = json.loads((run / "env.json").read_text())
    assert env["device"] == "cpu" and env["precision"] == "fp32" and "libavcodec" in env["ffmpeg"]
    res = json.loads((run / "results.json").read_text())
    assert res["steps"] == 6 and res["stop_reason"] == "max_steps"
    assert res["config_hash"] == C.config_hash(cfg)  # what a finished run is: the hash of its config
    test = res["test"]
    for k in ("accuracy_1", "accuracy_5", "accuracy_1_tol1", "accuracy_5_tol1", "loss"):
        assert 0.0 <= test[k] <= (1.0 if k != "loss" else 50.0), k
    assert test["n"] == 4 and test["accuracy_5"] == 1.0  # 3 classes: top-5 covers all
    assert len(test["per_offset_class_accuracy"]) == 3 and np.sum(test["confusion_matrix"]) == 4
    assert "per_content_class_accuracy" in test
    phases = {r["phase"] for r in runs.read_metrics(run)}
    assert {"train", "valid", "test", "event"} <= phases
    # checkpoints: weights_only-loadable, and usable as a model by paperlib.model.checkpoints.load_model
    from paperlib.model.checkpoints import load_model

    ck = _weights(run, "best")
    assert ck["run_config"] == C.to_dict(cfg) and ck["meta"]["kind"] == "train"
    model, mcfg = load_model(run / "checkpoints" / "last.pt")
    assert mcfg == cfg.model
    # `python -m paperlib evaluate` on best.pt reproduces the run's own test numbers (same fixed offsets and weights)
    from paperlib.commands import evaluate as evaluate_command

    out = tmp_path / "eval.json"
    assert evaluate_command.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--json", str(out),
                                  "--device", "cpu"]) == 0
    again = json.loads(out.read_text())["metrics"]
    for k in ("accuracy_1", "accuracy_1_tol1", "n"):
        assert again[k] == test[k], k
    assert again["loss"] == pytest.approx(test["loss"], rel=1e-5)


def test_resume_equals_uninterrupted_on_real_data(synth_root, tmp_path):
    full = T.fit(_smoke(synth_root, tmp_path / "a", "train.max_steps=6", "train.test=false"))
    part = T.fit(_smoke(synth_root, tmp_path / "b", "train.max_steps=3", "train.test=false"))
    resumed = T.fit(dataclasses.replace(
        _smoke(synth_root, tmp_path / "b", "train.max_steps=6", "train.test=false", f"train.resume={part}")))
    assert resumed == part
    _assert_same_weights(_weights(full), _weights(resumed))
    a, b = _weights(full)["optimizer"]["state"], _weights(resumed)["optimizer"]["state"]
    assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)


def test_finetune_from_checkpoint_carry_or_fresh(synth_root, tmp_path):
    src = T.fit(_smoke(synth_root, tmp_path / "src", "train.max_steps=3", "train.test=false"))
    ckpt = src / "checkpoints" / "last.pt"
    common = ("train.max_steps=1", "train.test=false", f"train.init_from={ckpt}")
    carry = T.fit(_smoke(synth_root, tmp_path / "carry", *common, "train.init_carry_optimizer=true"))
    fresh = T.fit(_smoke(synth_root, tmp_path / "fresh", *common, "train.init_carry_optimizer=false"))
    c, f = _weights(carry), _weights(fresh)
    # carried: Adam step counts continue from 3 and the scheduler continues past the source's 3 steps (warm-up 5)
    assert c["scheduler"]["last_epoch"] == 4 and f["scheduler"]["last_epoch"] == 1
    assert float(c["optimizer"]["state"][0]["step"]) == 4 and float(f["optimizer"]["state"][0]["step"]) == 1
    assert c["state"]["step"] == 1 and c["state"]["epoch"] in (0, 1)  # epoch/step restart
    # the source is referenced (path, size, sha256), not copied: the run holds only its own two checkpoints
    ref = json.loads((carry / T.INIT_SOURCE_FILE).read_text())
    assert ref["path"] == str(ckpt.resolve()) and ref["size"] == ckpt.stat().st_size
    assert ref["sha256"] == __import__("hashlib").sha256(ckpt.read_bytes()).hexdigest()
    assert sorted(p.name for p in carry.rglob("*.pt")) == ["best.pt", "last.pt"]
    with pytest.raises(ValueError, match="do not fit"):
        T.fit(_smoke(synth_root, tmp_path / "bad", *common, "model.d_model=16"))


def test_cli_print_config_and_errors(capsys, tmp_path):
    assert train_command.main(["--preset", "smoke", "--print-config", "train.max_steps=2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"]["max_steps"] == 2 and out["model"]["backbone"] == "small"
    assert train_command.main(["--preset", "smoke", "train.nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    assert train_command.main(["--preset", "smoke"]) == 2
    assert "data.root is not set" in capsys.readouterr().err
    assert train_command.main(["--preset", "smoke", f"data.root={tmp_path}",
                               f"train.run_root={tmp_path / 'runs'}"]) == 2
    assert "no LRS3 clips" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_plateau_warning_is_emitted_during_fit(tmp_path):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        run = _fit(_cfg(tmp_path, max_steps=8, base_lr=FROZEN_LR, log_every=1, plateau_warn_steps=4,
                        plateau_rel_tol=0.9))
    assert any(issubclass(w.category, T.PlateauWarning) for w in rec)
    assert any(r.get("event") == "plateau" for r in runs.read_metrics(run, "event"))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_cuda_training_and_resume(synth_root, tmp_path, precision):
    """bf16 autocast (auto) and fp16 + GradScaler on CUDA: finite training, checkpoints with CUDA RNG, resume works."""
    ov = ("train.test=false", f"train.precision={precision}")
    part = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=3", *ov, device="cuda"))
    env = json.loads((part / "env.json").read_text())
    assert env["precision"] == ("bf16" if precision == "auto" else "fp16") and env["device"].startswith("cuda")
    ck = _weights(part)
    assert "cuda" in ck["rng"][0] and (precision != "fp16" or ck["scaler"]["scale"] > 0)
    resumed = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=6", *ov, f"train.resume={part}", device="cuda"))
    res = json.loads((resumed / "results.json").read_text())
    assert res["steps"] == 6 and math.isfinite(res["valid_last"]["loss"])
    assert all(torch.isfinite(v).all() for v in _weights(resumed)["model"].values() if v.is_floating_point())


def test_official_optimizer_state_is_reindexed_by_parameter_name():
    """Official files index Adam state by the official parameter order; carrying it must follow the names."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    ours = T.trainable_names(model)  # ['0.weight', '0.bias', '1.weight', '1.bias']
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    official_order = ["1.bias", "0.weight", "1.weight", "0.bias"]  # a different registration order
    state = {i: {"step": torch.tensor(7.0), "exp_avg": torch.full(shapes[n], float(i)),
                 "exp_avg_sq": torch.full(shapes[n], float(i))} for i, n in enumerate(official_order)}
    opt = {"state": state, "param_groups": [{"lr": 4e-5, "betas": (0.9, 0.999), "eps": 1e-7, "weight_decay": 0,
                                             "params": [0, 1, 2, 3]}]}
    out = CK.reindex_optimizer_state(opt, official_order, model, "x.pt")
    for j, n in enumerate(ours):
        assert float(out["state"][j]["exp_avg"].flatten()[0]) == official_order.index(n)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    adam.load_state_dict(out)  # loadable as is
    bad = dict(opt, state={**state, 0: {"exp_avg": torch.zeros(5)}})
    with pytest.raises(ValueError, match=r"'1.bias' has shape \(5,\)"):
        CK.reindex_optimizer_state(bad, official_order, model, "x.pt")
    with pytest.raises(ValueError, match="no optimiser state for parameter"):
        CK.reindex_optimizer_state(opt, ["a", "b", "c", "d"], model, "x.pt")


def test_time_budget_stops_the_run(tmp_path):
    run = _fit(_cfg(tmp_path, time_budget_min=0.01, epochs=10**6, log_every=100))
    res = json.loads((run / runs.RESULTS_FILE).read_text())
    assert res["stop_reason"] == "time_budget" and res["steps"] >= 1 and res["elapsed_s"] >= 0.6


def test_finetune_preset_on_sparse_clips_reports_mean_and_std_over_passes(tmp_path_factory, tmp_path):
    """smoke-finetune: VGGSound-Sparse layout, the official fine-tuning augmentations, random-offset evaluation
    repeated iter_times=2 times (mean +- std), per-content-class accuracy keyed by the event class."""
    from paperlib.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth-sparse32")
    generate(SynthConfig(setting="sparse", size=32), root, clips=20, progress=False)
    cfg = RC.resolve("smoke-finetune", [f"data.root={root}", f"train.run_root={tmp_path}", "train.progress=false",
                                       "train.device=cpu", "train.max_steps=2"])
    run = T.fit(cfg)
    test = json.loads((run / "results.json").read_text())["test"]
    assert test["iter_times"] == 2 and len(test["passes"]) == 2
    assert "accuracy_1_std" in test and test["accuracy_1"] == pytest.approx(
        np.mean([p["accuracy_1"] for p in test["passes"]]))
    from paperlib.data.synthetic import SPARSE_CLASSES

    assert test["per_content_class_accuracy"] and set(test["per_content_class_accuracy"]) <= set(
        map(str, range(len(SPARSE_CLASSES))))


@pytest.mark.parametrize("memory_format, device, expect", [("auto", "cpu", True), ("contiguous", "cpu", False),
                                                           ("channels_last", "cpu", True)])
def test_memory_format_of_the_training_model(memory_format, device, expect):
    """auto = channels-last convolution weights on CPU (the faster training step); the logits are unchanged up to
    float rounding, and a bad value is refused by the config check."""
    from types import SimpleNamespace

    from paperlib.engine.objectives import CrossEntropyObjective
    from paperlib.model.sparsesync import build_model, input_shapes

    cfg = RC.resolve("smoke")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    ref = build_model(cfg.model)
    ref.load_state_dict(model.state_dict())
    tc = dataclasses.replace(cfg.train, memory_format=memory_format)
    where = SimpleNamespace(device=torch.device(device), dinfo=SimpleNamespace(enabled=False))
    obj = T.place_objective(CrossEntropyObjective(model), tc, where)
    convs = [m.weight for m in obj.model.modules()  # layouts differ only where channels and kernel are both > 1
             if isinstance(m, nn.Conv3d) and m.weight.shape[1] > 1 and m.weight.shape[2:].numel() > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last_3d) == expect for w in convs)
    shapes = input_shapes(cfg.model)
    video, audio = torch.randn(2, *shapes["video"]), torch.randn(2, *shapes["audio"])
    with torch.no_grad():
        torch.testing.assert_close(obj.model.eval()(video, audio), ref.eval()(video, audio), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="memory_format"):
        RC.check_run_config(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, memory_format="nchw")))


def test_compiled_step_trains_and_saves_the_bare_model(tmp_path, monkeypatch):
    """train.compile: the step runs through torch.compile and trains the weights an eager run trains (dropout off,
    so both take the same path; equal up to float rounding), the run saves the bare model's state dict (no wrapper
    prefix), and its campaign hash is the eager run's (compile is blanked there, like the device)."""
    from paperlib.paper.run_config import campaign_hash

    def fit(cfg):
        torch.manual_seed(0)
        model = _M()
        model.drop.p = 0.0
        data = {"train": _DS(64, 0), "valid": _DS(20, 1), "test": _DS(20, 2)}
        return T.fit(cfg, model=model, datasets=data)

    compiled_modules = []
    real_compile = torch.compile

    def spy(module, *a, **kw):
        compiled_modules.append(type(module).__name__)
        return real_compile(module, *a, **kw)

    monkeypatch.setattr(torch, "compile", spy)
    eager = fit(_cfg(tmp_path / "eager", max_steps=24))
    assert compiled_modules == []
    compiled = fit(_cfg(tmp_path / "compiled", max_steps=24, compile=True))
    assert compiled_modules == ["CrossEntropyObjective"]  # the step: model + loss
    we, wc = _weights(eager), _weights(compiled)
    assert we["model"].keys() == wc["model"].keys() and wc["state"]["step"] == 24
    for k in we["model"]:
        torch.testing.assert_close(wc["model"][k], we["model"][k], atol=1e-4, rtol=1e-4)
    le = [r["loss"] for r in runs.read_metrics(eager, "train")]
    lc = [r["loss"] for r in runs.read_metrics(compiled, "train")]
    assert len(le) == len(lc) == 12 and le[-1] < le[0] and lc == pytest.approx(le, rel=1e-4)
    cfg_e = json.loads((eager / runs.CONFIG_FILE).read_text())
    cfg_c = json.loads((compiled / runs.CONFIG_FILE).read_text())
    assert cfg_c["train"]["compile"] is True and cfg_e["train"]["compile"] is False
    for d in (cfg_e, cfg_c):
        d["train"]["run_root"] = ""
        d.setdefault("data", {})["root"] = ""
        d["data"]["decoded_cache_dir"] = ""
    assert campaign_hash(cfg_e, "x", None, None) == campaign_hash(cfg_c, "x", None, None)
