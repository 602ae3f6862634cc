"""paperlib.model.checkpoints: plain-data paperlib checkpoints, the safe official loader, the converter and its errors,
refusal of malicious pickles, truncated files, and backbone weights from user paths."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.core.geometry import Geometry
from paperlib.model.backbones import ResNet18Audio, S3DVisual
from paperlib.model.checkpoints import convert_official_state_dict, load_model, save_checkpoint
from paperlib.model.weights import (CheckpointError, load_backbone_weights, load_checkpoint, load_official_checkpoint,
                                    official_key_to_paperlib)
from paperlib.model.sparsesync import ModelConfig, build_model, input_shapes

FIXTURES = Path(__file__).parent / "fixtures" / "official"
TINY = ModelConfig(geometry=Geometry(crop=32, clip_sec=1.0), backbone="small", d_model=32, n_head=4, depth=1,
                   n_selectors=4)


def official_layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    meta = json.loads((FIXTURES / f"official_state_dict_{name}.json").read_text())
    return [(e["key"], tuple(e["shape"])) for e in meta["state_dict"]]


def official_state_dict(name: str = "L1_C21", seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.zeros(s, dtype=torch.int64) if k.endswith("num_batches_tracked") else 0.02 * torch.randn(
        s, generator=g) for k, s in official_layout(name)}


def official_extras() -> dict:
    """Everything else an official checkpoint holds (v-iashin/SparseSync), with real objects."""
    omegaconf = pytest.importorskip("omegaconf")
    args = omegaconf.OmegaConf.create({
        "action": "train_avsync_model",
        "model": {"target": "model.sync_model.AVSyncModel", "params": {"transformer": {
            "target": "model.modules.feature_selector.SparseSync",
            "params": {"n_layer": 1, "n_head": 8, "n_embd": 512, "num_offset_cls": 21,
                       "visual_block_shape": [16, 7, 7], "audio_block_shape": [9, 20], "embd_pdrop": 0.1}}}},
        "training": {"base_learning_rate": 5e-6, "betas": [0.9, 0.999], "use_half_precision": True},
        "data": {"vfps": 25, "afps": 16000, "crop_len_sec": 5, "max_off_sec": 2.0},
    })
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    opt = torch.optim.Adam(params, lr=4e-5, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, 0.01, total_iters=10), torch.optim.lr_scheduler.ConstantLR(
            opt, 1.0)], milestones=[10])
    sum(p.sum() for p in params).backward()
    opt.step()
    sched.step()
    return {"args": args, "loss": 0.73, "metrics": {"accuracy_1": 0.5, "mAP": np.float64(0.41)}, "epoch": 12,
            "optimizer": opt.state_dict(), "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 3},
            "lr_scheduler": sched.state_dict(), "model_type": "AVSyncModel"}


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor], dict]:
    """An official-format L1_C21 checkpoint (paper-size weights, OmegaConf args, Adam/scheduler/scaler state)."""
    sd = official_state_dict("L1_C21")
    extras = official_extras()
    path = tmp_path_factory.mktemp("official") / "22-07-13T22-25-49.pt"
    torch.save({"model": sd, **extras}, path)
    return path, sd, extras


# --------------------------------------------------------------------------------------------------------------------
# paperlib checkpoints
# --------------------------------------------------------------------------------------------------------------------

def test_paperlib_roundtrip_weights_only(tmp_path):
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, variant="sparsesync", visual_weights=None)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shapes = input_shapes(cfg)
    model(torch.randn(2, *shapes["video"]), torch.randn(2, *shapes["audio"])).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "run" / "best.pt", model, cfg, optimizer=opt.state_dict(), epoch=3,
                           metrics={"accuracy_1": 0.25}, meta={"run": "abc"})
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)  # plain data only
    assert set(raw) == {"model", "config", "meta", "optimizer", "epoch", "metrics"}
    assert raw["meta"]["run"] == "abc" and raw["meta"]["format"].startswith("paperlib-checkpoint")
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["config"]["d_model"] == 32
    loaded, cfg2 = load_model(path)
    assert cfg2 == cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    opt2 = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt["optimizer"])
    model.eval(), loaded.eval()
    x = (torch.randn(1, *shapes["video"]), torch.randn(1, *shapes["audio"]))
    with torch.no_grad():
        assert torch.equal(model(*x), loaded(*x))
    save_checkpoint(path, model, cfg, epoch=4)  # overwrite in place
    assert load_checkpoint(path)["epoch"] == 4


def test_save_rejects_non_plain_data(tmp_path):
    model = build_model(TINY)
    with pytest.raises(TypeError, match="metrics.mAP"):
        save_checkpoint(tmp_path / "x.pt", model, TINY, metrics={"mAP": np.float64(0.4)})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, TINY, config={})
    assert not any(tmp_path.iterdir())


def test_truncated_files_fail_cleanly(tmp_path, official_file):
    path = save_checkpoint(tmp_path / "a.pt", build_model(TINY), TINY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for fn in (load_checkpoint, load_model):
        with pytest.raises(CheckpointError, match=r"a\.pt.*(truncated|cannot read)"):
            fn(path)
    off = tmp_path / "official.pt"
    off.write_bytes(official_file[0].read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="official.pt"):
        load_official_checkpoint(off)
    with pytest.raises(CheckpointError, match="no such"):
        load_model(tmp_path / "missing.pt")


def test_load_checkpoint_refuses_official_files(official_file):
    with pytest.raises(CheckpointError, match=r"22-07-13T22-25-49\.pt.*official SparseSync checkpoint.*load_model"):
        load_checkpoint(official_file[0])


# --------------------------------------------------------------------------------------------------------------------
# Official checkpoints
# --------------------------------------------------------------------------------------------------------------------

def test_official_file_loads_with_omegaconf(official_file):
    from omegaconf import OmegaConf

    path, sd, extras = official_file
    ckpt = load_official_checkpoint(path)
    assert ckpt["args"] == OmegaConf.to_container(extras["args"], resolve=True)
    assert isinstance(ckpt["args"], dict) and ckpt["args"]["model"]["params"]["transformer"]["params"]["n_head"] == 8
    assert ckpt["metrics"]["mAP"] == pytest.approx(0.41) and ckpt["epoch"] == 12
    st = ckpt["optimizer"]["state"][0]
    assert torch.equal(st["exp_avg"], extras["optimizer"]["state"][0]["exp_avg"])
    assert ckpt["lr_scheduler"]["_milestones"] == [10]
    assert all(torch.equal(ckpt["model"][k], v) for k, v in sd.items())
    # the inert stand-ins give the same plain config without running omegaconf code
    assert load_official_checkpoint(path, use_omegaconf=False)["args"] == ckpt["args"]

    model, cfg = load_model(path)
    assert (cfg.variant, cfg.depth, cfg.geometry.num_classes, cfg.backbone, cfg.n_head) == \
        ("sparsesync", 1, 21, "paper", 8)
    msd = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(msd[official_key_to_paperlib(k)], v), k
    assert len(msd) == len(sd)
    with pytest.raises(CheckpointError, match=r"21 classes.*3 were requested"):
        load_model(path, num_classes=3)


def test_ddp_prefix_and_backbone_fc_are_handled():
    sd = {f"module.{k}": v for k, v in official_state_dict("L1_C21").items()}
    sd["module.vfeat_extractor.fc.0.weight"] = torch.zeros(400, 1024, 1, 1, 1)
    out, cfg = convert_official_state_dict(sd)
    assert cfg.depth == 1 and not any("fc" in k for k in out)


def _evil_class(marker: Path):
    class Evil:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('pwned')",)
    return Evil


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"transformer.off_head.weight": torch.zeros(21, 512)}, "args": _evil_class(marker)()}, path)
    for fn in (load_model, load_official_checkpoint, load_checkpoint):
        with pytest.raises(CheckpointError, match=r"evil\.pt.*refused.*builtins\.exec"):
            fn(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_backbone_weights(S3DVisual(), path, "visual")
    assert not marker.exists()
    # the payload is live: an unrestricted load would have run it
    torch.load(path, weights_only=False)
    assert marker.read_text() == "pwned"


def test_malicious_global_inside_allowed_container_is_refused(tmp_path):
    marker = tmp_path / "marker2"

    class Sneaky:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "sneaky.pt"
    extras = {"optimizer": {"state": {0: {"step": Sneaky()}}, "param_groups": []}}
    torch.save({"model": official_state_dict("L1_C21"), **extras}, path)
    with pytest.raises(CheckpointError, match=r"sneaky\.pt.*(posix|nt)\.system"):
        load_model(path)
    assert not marker.exists()
    # a plain pickle (not a torch zip file) is refused too, by torch's restricted unpickler
    raw = tmp_path / "raw.pt"
    with open(raw, "wb") as f:
        pickle.dump({"args": _evil_class(marker)()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"raw\.pt"):
        load_official_checkpoint(raw)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------------------------
# Converter
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,depth,classes", [("L1_C21", 1, 21), ("L3_C21", 3, 21), ("L3_C3", 3, 3)])
def test_converter_maps_every_key_one_to_one(name, depth, classes):
    layout = official_layout(name)
    sd = {k: torch.empty(s, device="meta") for k, s in layout}
    out, cfg = convert_official_state_dict(sd)
    assert (cfg.depth, cfg.geometry.num_classes, cfg.variant) == (depth, classes, "sparsesync")
    assert len(out) == len(layout) == len({official_key_to_paperlib(k) for k, _ in layout})
    assert official_key_to_paperlib("vfeat_extractor.base.5.branch0.0.bn.running_var") == \
        "visual_backbone.features.5.branch0.1.running_var"
    assert official_key_to_paperlib("vfeat_extractor.base.14.branch2.1.conv_t.weight") == \
        "visual_backbone.features.14.branch2.1.1.0.weight"
    assert official_key_to_paperlib("transformer.vis_pos_emb.width_embed.weight") == "head.vis_pos.width_embed"
    assert official_key_to_paperlib("transformer.global_transformer.OFF_tok") == "head.sync.off_token"


def test_converter_errors_name_keys_and_shapes():
    base = {k: torch.empty(s, device="meta") for k, s in official_layout("L1_C21")}
    missing = dict(base)
    del missing["transformer.a_selector.blocks.0.xattn.value.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys \['head\.a_selector\.blocks\.0\.xattn\.value\.bias'\]"):
        convert_official_state_dict(missing)
    extra = dict(base, **{"transformer.v_selector.blocks.0.attn.extra.weight": torch.empty(3, device="meta")})
    with pytest.raises(CheckpointError, match=r"unexpected keys.*transformer\.v_selector\.blocks\.0\.attn\.extra"):
        convert_official_state_dict(extra)
    shape = dict(base, **{"transformer.vis_pos_emb.time_embed.weight": torch.empty(20, 172, device="meta")})
    with pytest.raises(CheckpointError, match=r"vis_pos_emb\.time_embed\.weight.*\(20, 172\) vs model \(16, 172\)"):
        convert_official_state_dict(shape)
    with pytest.raises(CheckpointError, match="no paperlib counterpart"):
        convert_official_state_dict(dict(base, **{"something.else": torch.empty(1, device="meta")}))
    # a geometry whose tables match (here: the checkpoint's 16x7x7 from a 5 s clip) is required
    with pytest.raises(CheckpointError, match="clip 3.0 s"):
        convert_official_state_dict(base, base=ModelConfig(geometry=Geometry(clip_sec=3.0)))


def test_converter_no_selector_variant():
    """The official no-selector transformer (configs/transformer.yaml) -> variant 'transformer'."""
    front = {k: torch.empty(s, device="meta") for k, s in official_layout("L1_C21")
             if not k.startswith("transformer.")}
    d = 512
    head = {"transformer.OFF_tok": (1, 1, d), "transformer.MOD_tok": (1, 1, d),
            "transformer.pre_lnorm_vis.weight": (d,), "transformer.pre_lnorm_vis.bias": (d,),
            "transformer.pre_lnorm_aud.weight": (d,), "transformer.pre_lnorm_aud.bias": (d,),
            "transformer.vis_pos_emb.time_embed.weight": (16, 172),
            "transformer.vis_pos_emb.height_embed.weight": (7, 170),
            "transformer.vis_pos_emb.width_embed.weight": (7, 170),
            "transformer.aud_pos_emb.freq_embed.weight": (9, 256),
            "transformer.aud_pos_emb.time_embed.weight": (20, 256),
            "transformer.ln_f.weight": (d,), "transformer.ln_f.bias": (d,), "transformer.off_head.weight": (21, d)}
    for i in range(3):
        p = f"transformer.blocks.{i}."
        head |= {p + "ln1.weight": (d,), p + "ln1.bias": (d,), p + "ln2.weight": (d,), p + "ln2.bias": (d,),
                 p + "mlp.0.weight": (4 * d, d), p + "mlp.0.bias": (4 * d,), p + "mlp.2.weight": (d, 4 * d),
                 p + "mlp.2.bias": (d,)}
        for lin in ("key", "query", "value", "proj"):
            head |= {p + f"attn.{lin}.weight": (d, d), p + f"attn.{lin}.bias": (d,)}
    sd = front | {k: torch.empty(s, device="meta") for k, s in head.items()}
    out, cfg = convert_official_state_dict(sd)
    assert (cfg.variant, cfg.depth) == ("transformer", 3)
    assert sum(v.numel() for k, v in out.items() if not k.endswith(("running_mean", "running_var",
                                                                     "num_batches_tracked"))) == 29_089_644


# --------------------------------------------------------------------------------------------------------------------
# Backbone weights from user paths
# --------------------------------------------------------------------------------------------------------------------

def test_backbone_weights_from_user_paths(tmp_path):
    sd = official_state_dict("L1_C21", seed=1)
    # the official S3D file: kylemin's layout (base.*) with its Kinetics fc
    s3d = {k[len("vfeat_extractor."):]: v for k, v in sd.items() if k.startswith("vfeat_extractor.")}
    s3d |= {"fc.0.weight": torch.zeros(400, 1024, 1, 1, 1), "fc.0.bias": torch.zeros(400)}
    torch.save(s3d, tmp_path / "S3D_kinetics400_torchified.pt")
    visual = S3DVisual()
    load_backbone_weights(visual, tmp_path / "S3D_kinetics400_torchified.pt", "visual")
    vsd = visual.state_dict()
    for k, v in s3d.items():
        if not k.startswith("fc."):
            assert torch.equal(vsd[official_key_to_paperlib("vfeat_extractor." + k)[len("visual_backbone."):]], v)
    # the official ResNetAudio checkpoint: {"model": ResNet18 with a 308-class fc, ...}
    res = {k[len("afeat_extractor."):]: v for k, v in sd.items() if k.startswith("afeat_extractor.")}
    res |= {"fc.weight": torch.zeros(308, 512), "fc.bias": torch.zeros(308)}
    torch.save({"model": res, "epoch": 3}, tmp_path / "ResNetAudio.pt")
    audio = ResNet18Audio()
    load_backbone_weights(audio, tmp_path / "ResNetAudio.pt", "audio")
    assert torch.equal(audio.state_dict()["layer4.1.bn2.running_var"], res["layer4.1.bn2.running_var"])
    # a wrong file names itself and the problem
    with pytest.raises(CheckpointError, match=r"ResNetAudio\.pt.*visual backbone"):
        load_backbone_weights(S3DVisual(), tmp_path / "ResNetAudio.pt", "visual")
    # build_model takes the paths from the config; a paperlib checkpoint works as a source too
    src = build_model(TINY)
    path = save_checkpoint(tmp_path / "small.pt", src, TINY)
    model = build_model(dataclasses.replace(TINY, visual_weights=str(path), audio_weights=str(path)))
    for k, v in src.state_dict().items():
        if k.startswith(("visual_backbone.", "audio_backbone.")):
            assert torch.equal(model.state_dict()[k], v), k
