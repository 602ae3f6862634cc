"""The paper profile end to end on a CPU: a tiny data root in the official layouts (synthetic clips as lrs3/,
lrs3_no_face_crop/, vggsound_sparse/, vggsound/, and weights/ with extractor files written here), `reproduce --profile
paper` with every run launched through torchrun (2 gloo processes), official-format checkpoints filling Table 2's
SparseSync cells without training them, one clear error for a missing data folder or weights file; and the pieces:
the pretrained-extractor convention, the cache key (device out, precision and process count in), the recipe switch,
the launch command, checkpoint mode's key mapping."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paperlib.commands import main
from paperlib.core.config import to_dict
from paperlib.data import provision as PV
from paperlib.data.synthetic import SynthConfig, generate
from paperlib.model import weights as W
from paperlib.model.backbones import SmallAudio, SmallVisual
from paperlib.model.sparsesync import build_model
from paperlib.model.weights import official_key_to_paperlib
from paperlib.paper import artefacts as A
from paperlib.paper import campaign as C
from paperlib.paper import campaign_runner as R
from paperlib.paper import plan as PL
from paperlib.paper import run_config as RUN
from paperlib.paper import tables as T

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "official"
AUDIO_2S = "ResNetAudio-22-08-04T09-51-04.pt"  # the authors' 2-s VGGSound audio extractor (the tiny geometry's length)
# A trial size of the paper profile for a 2-core CPU: small backbones, 2-s windows of 32-px crops, two steps per run
TINY = ["model.backbone=small", "model.d_model=32", "model.n_head=4", "model.depth=1", "model.n_selectors=4",
        "model.geometry.crop=32", "model.geometry.clip_sec=2.0", "model.geometry.n_fft=128", "model.geometry.hop=128",
        "train.batch_size=2", "train.max_steps=2", "train.warmup_steps=1", "train.base_lr=0.001",
        "train.num_workers=0", "train.log_every=1", "train.ddp_timeout_s=120", "data.iter_times=1",
        "data.upscale_crop=24", "data.freq_mask=8", "data.time_mask=20"]


def _layout(root: Path, folder: str, setting: str, seed: int = 0) -> Path:
    cfg = SynthConfig(setting=setting, size=32, seed=seed, clips_per_video=1, split_fractions=(0.5, 0.25, 0.25))
    return generate(cfg, root / folder, clips=8, progress=False)


def _write_extractor_weights(weights: Path) -> dict[str, dict]:
    """The extractor files of the convention, holding weights that fit the tiny configuration's small backbones: the
    visual one as a plain state_dict (as the official S3D file), the audio one as {"model": ...} (as ResNetAudio)."""
    weights.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    visual, audio = SmallVisual().state_dict(), SmallAudio().state_dict()
    torch.save(visual, weights / W.S3D_OFFICIAL_FILE)
    torch.save({"model": audio, "epoch": 3}, weights / AUDIO_2S)
    return {"visual": visual, "audio": audio}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Synthetic clips in the official layouts under one data root, plus weights/."""
    root = tmp_path_factory.mktemp("paper-data")
    _layout(root, "lrs3", "dense-crop")
    _layout(root, "lrs3_no_face_crop", "dense-wide")  # the same seed: the same talkers, as LRS3's two variants
    _layout(root, "vggsound_sparse", "sparse")
    general = _layout(root, "vggsound", "sparse", seed=1)  # a VGGSound layout: the same files under its names
    (general / "vggsound.csv").write_text((general / "vggsound_sparse.csv").read_text())
    for split in ("train", "valid", "test"):
        (general / f"vggsound_{split}.txt").write_text((general / f"vggsound_sparse_{split}.txt").read_text())
    _write_extractor_weights(root / "weights")
    return root


def _official_file(path: Path, key: str, data_root: Path) -> Path:
    """An official-format SparseSync checkpoint (the authors' state_dict names, args as plain data) at the key's
    tiny geometry: S3D + ResNet18 and width 512 as every official model (no audio bridge), one layer."""
    cfg = RUN.resolve_spec(PL.plan("paper")[key], "paper", data_root=data_root, overrides=TINY)
    mcfg = dataclasses.replace(cfg.model, backbone="paper", d_model=512, n_head=8, visual_weights=None,
                               audio_weights=None)
    names = [e["key"] for e in json.loads((FIXTURES / "official_state_dict_L1_C21.json").read_text())["state_dict"]]
    to_official = {official_key_to_paperlib(k): k for k in names}
    torch.manual_seed(3)
    sd = build_model(mcfg).state_dict()
    assert set(sd) <= set(to_official), sorted(set(sd) - set(to_official))[:5]
    args = {"model": {"params": {"transformer": {"params": {"n_head": mcfg.n_head, "n_layer": mcfg.depth}}}}}
    torch.save({"model": {to_official[k]: v for k, v in sd.items()}, "args": args, "epoch": 1}, path)
    return path


def _hash_folders(runs: Path) -> set[str]:
    return {p.name for p in (runs / "campaign" / "paper").iterdir()} if (runs / "campaign" / "paper").is_dir() \
        else set()


# ---------------------------------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(1500)
def test_reproduce_paper_table2_with_torchrun_and_official_checkpoints(data_root, tmp_path, monkeypatch, capsys):
    # the notebook kernel must be this interpreter (the venv), whatever PATH says
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    runs, figs = tmp_path / "runs", tmp_path / "figures"
    # the synthetic stand-ins have no fixed-offset CSVs: they are made here (the official ones: test_protocol_inputs)
    common = ["reproduce", "--profile", "paper", "--only", "table2", "--data-root", str(data_root), "--gpus", "2",
              "--runs-root", str(runs), "--figures-root", str(figs), "--regenerate-protocol", "--set", *TINY]
    c21 = _official_file(tmp_path / "22-07-13T22-25-49.pt", "sparsesync/dense-wide/c21", data_root)
    c3 = _official_file(tmp_path / "22-07-18T08-00-00.pt", "sparsesync/dense-wide/c3", data_root)
    sparsesync = [k for k in T.table2_keys() if k.startswith("sparsesync/")]
    given = ",".join(f"{k}={c21 if k.endswith('c21') else c3}" for k in sparsesync)

    # 1. official-format checkpoints fill the SparseSync cells; only AVST_dec is trained
    assert main([*common, "--checkpoint", given]) == 0, capsys.readouterr().err[-3000:]
    table = json.loads((figs / "tables" / "table2_main_results.json").read_text())
    assert table["profile"] == "paper"
    used = {r["run"]: r for r in table["tables"]["Runs used"]}
    for k in sparsesync:
        assert used[k]["run_dir"].endswith(".pt") and used[k]["steps"] == 0, used[k]
    folders = _hash_folders(runs)
    assert len(folders) == 6 and all(f.startswith("avst_dec_") for f in folders), folders  # nothing of SparseSync
    assert len(list((runs / "checkpoint_eval").glob("*.json"))) == 6  # each official file evaluated once per cell

    # 2. the same data root without checkpoints: SparseSync is trained, AVST_dec reused
    logs = {p: p.stat().st_mtime_ns for p in (runs / "campaign" / "paper").glob("*/train.log")}
    assert main(common) == 0, capsys.readouterr().err[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in logs.items())  # the AVST_dec runs were not touched
    folders = _hash_folders(runs)
    assert len(folders) == 12
    table = json.loads((figs / "tables" / "table2_main_results.json").read_text())
    main_table = next(v for k, v in table["tables"].items() if k != "Runs used")
    cells = [r for r in main_table if r["model"] != "oracle" and r.get("n")]
    assert len(cells) == 12 and all(r["ours"] == r["ours"] for r in cells)  # every cell filled, none NaN
    for hroot in (runs / "campaign" / "paper").iterdir():
        log = (hroot / "train.log").read_text()
        assert "torch.distributed.run --standalone --nproc_per_node 2 -m paperlib train --config" in log
        (run,) = [p for p in hroot.iterdir() if (p / "results.json").is_file()]
        res = json.loads((run / "results.json").read_text())
        assert res["world_size"] == 2 and res["ranks_in_sync"] is True and res["steps"] == 2
        env = json.loads((run / "env.json").read_text())
        assert env["world_size"] == 2 and env["precision"] == "fp32"
        cfg = json.loads((run / "config.json").read_text())
        if cfg["train"]["init_from"] is None:  # from scratch: the pretrained extractors of the convention
            assert cfg["model"]["visual_weights"] == str(data_root.resolve() / "weights" / W.S3D_OFFICIAL_FILE)
            # the AVST_dec baseline trains its audio extractor from scratch (paper, Sec. 5)
            audio = None if cfg["model"]["variant"] == "avst_dec" else str(data_root.resolve() / "weights" / AUDIO_2S)
            assert cfg["model"]["audio_weights"] == audio
        else:
            assert cfg["model"]["visual_weights"] is None
    report = (figs / "REPORT.md").read_text()
    assert "Profile `paper`" in report and "table2_main_results" in report


# ---------------------------------------------------------------------------------------------------------------------
# clear errors


def test_missing_data_folder_or_weights_file_is_one_clear_error(data_root, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["reproduce", "--profile", "paper", "--only", "table2", "--data-root", str(empty),
                 "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "paper profile cannot start" in err
    for folder in ("lrs3", "lrs3_no_face_crop", "vggsound_sparse"):
        assert str(empty.resolve() / folder) in err
    # every data folder there, the 5-s audio extractor missing (no --set: the paper's 5-s windows)
    partial = tmp_path / "partial"
    partial.mkdir()
    for folder in ("lrs3", "lrs3_no_face_crop", "vggsound_sparse", "vggsound", "weights"):
        os.symlink(data_root / folder, partial / folder)
    assert main(["reproduce", "--profile", "paper", "--only", "table2", "--data-root", str(partial),
                 "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "ResNetAudio-22-06-24T08-10-33.pt does not exist" in err and W.AUDIO_URL.format(
        name="ResNetAudio-22-06-24T08-10-33.pt") in err
    assert "data folder" not in err and not (tmp_path / "runs" / "campaign").exists()  # nothing started
    assert main(["reproduce", "--profile", "paper", "--only", "table2", "--runs-root", str(tmp_path / "runs")]) == 2
    assert "needs data_root" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------------
# the pretrained extractors


def test_extractor_weights_convention(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    weights = tmp_path / "weights"
    weights.mkdir()
    # nothing there: the official names are reported, with where to get them
    paths = W.backbone_weight_paths(weights, 5.0)
    assert paths == {"visual": weights / W.S3D_OFFICIAL_FILE, "audio": weights / "ResNetAudio-22-06-24T08-10-33.pt"}
    with pytest.raises(FileNotFoundError) as e:
        W.check_backbone_weights(paths)
    assert W.S3D_OFFICIAL_FILE in str(e.value) and W.S3D_TORCHVISION_FILE in str(e.value)
    assert "download.pytorch.org/models/s3d-d76dad2f.pth" in str(e.value) and "never downloads" in str(e.value)
    # torchvision's file in the torch hub cache, then in weights/, then the official file: the last one found wins
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / W.S3D_TORCHVISION_FILE).write_bytes(b"x")
    assert W.backbone_weight_paths(weights, 5.0)["visual"] == cache / W.S3D_TORCHVISION_FILE
    (weights / W.S3D_TORCHVISION_FILE).write_bytes(b"x")
    assert W.backbone_weight_paths(weights, 5.0)["visual"] == weights / W.S3D_TORCHVISION_FILE
    (weights / W.S3D_OFFICIAL_FILE).write_bytes(b"x")
    assert W.backbone_weight_paths(weights, 5.0)["visual"] == weights / W.S3D_OFFICIAL_FILE
    # one audio extractor per input length (Table 4), none for lengths the authors did not train
    assert [W.audio_weight_name(s) for s in (2, 3, 4, 5, 6, 7)] == [
        "ResNetAudio-22-08-04T09-51-04.pt", "ResNetAudio-22-08-03T23-14-49.pt", "ResNetAudio-22-08-03T23-14-28.pt",
        "ResNetAudio-22-06-24T08-10-33.pt", "ResNetAudio-22-06-24T17-31-07.pt", "ResNetAudio-22-06-24T23-57-11.pt"]
    with pytest.raises(ValueError, match="2.5-s"):
        W.audio_weight_name(2.5)


def test_paper_runs_load_the_pretrained_extractors_and_the_ablations_mean_the_paper_s(tmp_path):
    files = _write_extractor_weights(tmp_path / "weights")
    specs = PL.plan("paper")

    def cfg(key, **kw):
        return RUN.resolve_spec(specs[key], "paper", data_root=tmp_path, overrides=TINY, **kw)

    scratch = cfg("sparsesync/dense-crop/c21")
    assert scratch.model.visual_weights == str(tmp_path.resolve() / "weights" / W.S3D_OFFICIAL_FILE)
    assert scratch.model.audio_weights == str(tmp_path.resolve() / "weights" / AUDIO_2S)
    model = build_model(scratch.model)
    for name, sd in (("visual", files["visual"]), ("audio", files["audio"])):
        got = getattr(model, f"{name}_backbone").state_dict()
        assert all(torch.equal(got[k], v) for k, v in sd.items())
    # every length starts from its own audio extractor (Table 4)
    assert RUN.resolve_spec(specs["sparsesync/dense-crop/c21/len3"], "paper", data_root="/d").model.audio_weights == \
        "/d/weights/ResNetAudio-22-08-03T23-14-49.pt"
    # frozen: the pretrained weights, never trained and not replaced by the parent's extractors
    frozen = cfg("sparsesync/dense-wide/c21/frozen-extractors")
    assert frozen.model.visual_weights and not frozen.model.train_visual_backbone
    assert frozen.train.init_skip == list(PL.BACKBONE_PREFIXES)
    # not pre-trained: the same chain from random extractors (no weights at its first run); fine-tunes take all from
    # their parent
    fresh = cfg("sparsesync/dense-crop/c21/no-pretrained-extractors")
    assert fresh.model.visual_weights is None and fresh.model.audio_weights is None
    assert specs["sparsesync/dense-wide/c21/no-pretrained-extractors"].init_from == \
        "sparsesync/dense-crop/c21/no-pretrained-extractors"
    assert cfg("sparsesync/sparse/c21").model.visual_weights is None
    # the AVST_dec baseline: the visual extractor pre-trained, its audio extractor from scratch (paper, Sec. 5)
    avst = cfg("avst_dec/dense-crop/c21")
    assert avst.model.visual_weights and avst.model.audio_weights is None
    # the synthetic profiles load their upstream training's weights, by the same fields
    mini = RUN.resolve_spec(PL.plan("mini")["sparsesync/dense-crop/c21"], "mini", runs_root="/r").model
    up = RUN.upstream_config("mini", 5.0)
    assert mini.visual_weights == f"/r/upstream/upstream-{up.digest()}-visual.pt"
    assert mini.audio_weights == f"/r/upstream/upstream-{up.digest()}-audio.pt"


# ---------------------------------------------------------------------------------------------------------------------
# the cache key, the recipe switch, the launch command


def test_device_does_not_split_the_cache_precision_and_processes_do():
    spec = PL.plan("paper")["sparsesync/dense-crop/c21"]
    cpu = RUN.resolve_spec(spec, "paper", data_root="/d", device="cpu")
    cuda = RUN.resolve_spec(spec, "paper", data_root="/d", device="cuda")
    assert (cpu.train.precision, cuda.train.precision) == ("fp32", "bf16")  # "auto" resolved by the device
    ident = PV.data_identity("paper", "dense-crop", "/d")

    def h(cfg, world=1):
        return RUN.campaign_hash(to_dict(cfg), ident, None, None, world_size=world)

    same_precision = dataclasses.replace(cuda, train=dataclasses.replace(cuda.train, precision="fp32"))
    assert h(cpu) == h(same_precision)  # cpu vs cuda, same precision: one run
    assert h(cpu) != h(cuda)  # bf16 changes the numbers
    assert h(cpu) != h(cpu, world=8) and h(cpu, world=1) == RUN.campaign_hash(to_dict(cpu), ident, None, None)
    moved = dataclasses.replace(cpu, model=dataclasses.replace(cpu.model, visual_weights="/elsewhere/" +
                                                               W.S3D_OFFICIAL_FILE))
    assert h(moved) == h(cpu)  # the weights are identified by their file name, not their folder
    # the CPU profiles are fp32 wherever they train, so a GPU run of them shares their cache
    mini = PL.plan("mini")["sparsesync/dense-crop/c21"]
    assert RUN.spec_hash(mini, "mini", device="cpu") == RUN.spec_hash(mini, "mini", device="cuda")
    assert C.process_count("mini", None) == 1 and C.process_count("paper", 3) == 3
    assert C.process_count("paper", 0) == max(1, torch.cuda.device_count())


def test_recipe_switch():
    paper = PL.plan("paper")["sparsesync/dense-crop/c21"]
    off = RUN.resolve_spec(paper, "paper", data_root="/d")
    on = RUN.resolve_spec(paper, "paper", data_root="/d", recipe="on")
    assert not off.train.recipe_init and off.train.aux_xcorr_weight == 0  # off at paper unless asked
    assert on.train.recipe_init and (on.train.aux_xcorr_weight, on.train.aux_match_weight) == (1.0, 3.0)
    assert RUN.spec_hash(paper, "paper", data_root="/d") != RUN.spec_hash(paper, "paper", data_root="/d", recipe="on")
    mini = PL.plan("mini")["sparsesync/dense-crop/c21"]
    assert RUN.spec_hash(mini, "mini") == RUN.spec_hash(mini, "mini", recipe="on")  # mini's default is the recipe
    assert not RUN.resolve_spec(mini, "mini", recipe="off").train.recipe_init
    with pytest.raises(ValueError, match="recipe"):
        RUN.resolve_spec(mini, "mini", recipe="maybe")


def test_train_command_in_process_torchrun_or_launcher(tmp_path):
    job = R.Job(key="k", hash="h", hash_root=tmp_path, parent_root=None, device="auto", test_data={}, spec={},
                profile="paper")
    args = ["--config", "c.json"]
    assert R.train_command(job, args) == ["python", "-m", "paperlib", "train", "--config", "c.json"]
    job.nproc = 8
    assert R.train_command(job, args) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node", "8", "-m", "paperlib", "train", "--config", "c.json"]
    job.launcher = ["srun", "--ntasks-per-node", "8"]
    assert R.train_command(job, args) == ["srun", "--ntasks-per-node", "8", sys.executable, "-m", "paperlib",
                                          "train", "--config", "c.json"]
    job.write()
    assert R.Job.read(tmp_path) == job  # the worker reads what the campaign wrote
    job.launcher = [sys.executable, "-c", "import sys; sys.exit(3)", "--"]
    with pytest.raises(RuntimeError, match="exited with status 3"):
        R.run_training(job, args)


def test_make_passes_the_paper_options():
    # Under `make test` the parent make's MAKEFLAGS/MAKELEVEL reach this child make, which then prints
    # "Entering/Leaving directory" lines around the recipe; run it as a top-level make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "table5", "PROFILE=paper",
                          "DATA_ROOT=/data", "GPUS=8", "RECIPE=on", "CHECKPOINT=a=b.pt"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1]
    assert "-m paperlib reproduce --profile paper --data-root /data --gpus 8 --recipe on --checkpoint a=b.pt" \
        in " ".join(line.split()) and line.endswith("--only table3")


# ---------------------------------------------------------------------------------------------------------------------
# checkpoint mode


def test_checkpoints_fill_the_cells_of_their_spec_aliases_included(tmp_path):
    f = tmp_path / "official.pt"
    f.write_bytes(b"x")
    text = f"sparsesync/sparse/c21={f},sparsesync/dense-wide/c21={f}"
    plan = list(PL.plan("paper"))
    assert A.checkpoint_fills(T.table4_keys(plan), "paper", text) == {
        "sparsesync/sparse/c21/len5": ("sparsesync/sparse/c21", str(f))}
    assert A.checkpoint_fills(T.table6_keys(plan), "paper", text) == {
        "sparsesync/dense-wide/c21/depth3": ("sparsesync/dense-wide/c21", str(f))}
    assert set(A.checkpoint_fills(T.table3_keys(), "paper", text)) == {"sparsesync/sparse/c21",
                                                                        "sparsesync/dense-wide/c21"}
    with pytest.raises(ValueError, match="not a run"):
        A.checkpoint_fills(T.table2_keys(), "paper", f"sparsesync/nowhere/c21={f}")


def test_checkpoint_mode_trains_the_rest_or_names_what_it_cannot_fill(tmp_path, monkeypatch):
    f = tmp_path / "best.pt"
    f.write_bytes(b"x")
    evaluated, trained = [], []
    monkeypatch.setattr(C, "evaluate_checkpoint", lambda path, key, profile, **kw: evaluated.append(key) or {
        "accuracy_1": 0.5, "accuracy_1_tol1": 0.7, "n": 10, "params": {"total": 1}})

    def fake_runs(keys, profile, **kw):
        trained.extend(keys)
        return {k: A.CheckpointRecord(spec=PL.plan(profile)[k], run_dir=tmp_path, test={"accuracy_1": 0.1, "n": 10},
                                      params={}, wall_s=0.0) for k in keys}

    monkeypatch.setattr(C, "ensure_runs", fake_runs)
    recs, notes = A.gather_records(T.table3_keys(), "smoke", checkpoint=f"sparsesync/sparse/c21={f}")
    assert evaluated == ["sparsesync/sparse/c21"] and "sparsesync/sparse/c21" not in trained
    assert set(trained) == set(T.table3_keys()) - {"sparsesync/sparse/c21"} and list(recs) == T.table3_keys()
    assert "checkpoint mode" in notes[0] and any("trained by the campaign" in n for n in notes)
    # at paper without data: the checkpoint's cell is filled, the others are named as not fillable here
    evaluated.clear(), trained.clear()
    recs, notes = A.gather_records(T.table7_keys(), "paper", data_root=str(tmp_path),
                                   checkpoint=f"sparsesync/general/c21={f}")
    assert list(recs) == ["sparsesync/general/c21"] and trained == []
    assert any("cannot be trained here" in n and "vggsound_sparse" in n for n in notes)


@pytest.mark.slow
def test_fig5_with_a_checkpoint_uses_the_test_clips_under_data_root(data_root, tmp_path):
    """Synthetic stand-ins (sidecars with the source's box and event times) are scored; real clips (no sidecars) are
    drawn with each head's peakedness, and the claims they cannot test say why."""
    root = tmp_path / "data"
    root.mkdir()
    os.symlink(data_root / "vggsound_sparse", root / "vggsound_sparse")
    shutil.copytree(data_root / "lrs3_no_face_crop", root / "lrs3_no_face_crop", ignore=shutil.ignore_patterns(
        "sidecar"))  # as real data: clips and lists, no ground truth
    ckpt = _official_file(tmp_path / "22-07-13T22-25-49.pt", "sparsesync/dense-wide/c21", data_root)
    art = A.fig5_attention("paper", data_root=str(root), checkpoint=f"sparsesync/dense-wide/c21={ckpt}",
                           overrides=" ".join(TINY), figures_root=str(tmp_path / "figs"), runs_root=str(tmp_path))
    titles = list(art.tables)
    assert any(t.startswith("Localisation score") and "sparse" in t for t in titles)
    peaked = next(v for t, v in art.tables.items() if t.startswith("Peakedness") and "dense-wide" in t)
    assert set(peaked["model"]) == {"trained", "untrained"} and (peaked["peakedness"] >= 1.0).all()
    for setting in ("sparse", "dense-wide"):
        assert (tmp_path / "figs" / f"fig5_attention_{setting}.png").stat().st_size > 1000
    assert len(art.claims) == 2 and all(c.verdict in ("reproduced", "not reproduced") for c in art.claims)
    assert any(str(root) in n for n in art.notes)
    config = json.loads(next((tmp_path / "fig5_attention").glob("paper-*/config.json")).read_text())
    assert config["checkpoint"] == str(ckpt) and config["data_root"] == str(root)
