"""Invariants of the model family (paperlib.model.sparsesync, paperlib.model.backbones): exact parameter counts,
geometry, gradients, batch independence, frozen backbones, the attention-weights path, init, and the model-summary CLI.

Paper-size models are built on the meta device (no memory, no compute); real forwards use the small CPU pair or tiny
geometry. The official-equivalence proof is in test_official_equivalence.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from paperlib.core.geometry import Geometry
from paperlib.model import sparsesync as M
from paperlib.model.backbones import ResNet18Audio, S3DVisual, SmallAudio, SmallVisual
from paperlib.model.sparsesync import ModelConfig, build_head, build_model, input_shapes, model_summary, token_grid

# Tiny CPU configs: 1 s clips, small crops, narrow transformer.
TINY = dict(backbone="small", d_model=32, n_head=4, depth=1, n_selectors=4)


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"geometry": Geometry(crop=32, clip_sec=1.0), **TINY, **kw})


def inputs(cfg: ModelConfig, batch: int = 2, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = input_shapes(cfg)
    g = torch.Generator().manual_seed(seed)
    if device == "meta":
        return (torch.empty((batch, *shapes["video"]), device="meta"),
                torch.empty((batch, *shapes["audio"]), device="meta"))
    return torch.randn((batch, *shapes["video"]), generator=g), torch.randn((batch, *shapes["audio"]), generator=g)


# --------------------------------------------------------------------------------------------------------------------
# Parameter counts (paper Table 6; the authors' code, v-iashin/SparseSync)
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth,total", [(1, 31_227_756), (2, 42_788_204), (3, 54_348_652), (6, 89_029_996)])
def test_param_counts_exact(depth, total):
    p = model_summary(ModelConfig(depth=depth), flops=False)["params"]
    assert p["total"] == p["trainable"] == total
    assert p["visual_backbone"] == 7_910_048 and p["audio_backbone"] == 11_170_240 and p["bridge"] == 524_800
    parts = ("visual_backbone", "audio_backbone", "bridge", "input_embed", "selectors", "sync_transformer",
             "classifier")
    assert sum(p[k] for k in parts) == total
    p3 = model_summary(ModelConfig(geometry=Geometry.for_classes(3), depth=depth), flops=False)["params"]
    assert total - p3["total"] == 9_216


def test_param_counts_no_selectors_and_frozen():
    p = model_summary(ModelConfig(variant="transformer"), flops=False)["params"]
    assert p["total"] == 29_089_644 and p["head"] == 9_484_556
    frozen = model_summary(ModelConfig(train_visual_backbone=False, train_audio_backbone=False), flops=False)
    assert frozen["params"]["trainable"] == 54_348_652 - 7_910_048 - 11_170_240
    assert frozen["params"]["total"] == 54_348_652


# --------------------------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------------------------

def test_paper_geometry():
    cfg = ModelConfig()
    assert input_shapes(cfg) == {"video": (125, 3, 224, 224), "audio": (1, 257, 626)}
    assert token_grid(cfg) == ((16, 7, 7), (9, 20))


@pytest.mark.parametrize("backbone", ["paper", "small"])
@pytest.mark.parametrize("crop,clip_sec", [(224, 5.0), (192, 2.0), (240, 7.0), (112, 3.0), (256, 4.0)])
def test_token_grid_matches_backbone_output(backbone, crop, clip_sec):
    cfg = ModelConfig(geometry=Geometry(crop=crop, clip_sec=clip_sec), backbone=backbone)
    video, audio = inputs(cfg, batch=1, device="meta")
    vis_cls, aud_cls = {"paper": (S3DVisual, ResNet18Audio), "small": (SmallVisual, SmallAudio)}[backbone]
    with torch.device("meta"):
        v, a = vis_cls(), aud_cls()
    vg, ag = token_grid(cfg)
    assert tuple(v(video).shape) == (1, v.out_channels, *vg)
    assert tuple(a(audio).shape) == (1, a.out_channels, *ag)


@pytest.mark.parametrize("variant", M.VARIANTS)
@pytest.mark.parametrize("crop,clip_sec", [(192, 2.0), (240, 7.0), (224, 3.5), (200, 6.0)])
def test_geometry_variants_run(variant, crop, clip_sec):
    """Any crop and 2-7 s clips: the paper model runs end to end (meta) and the small-backbone model for real."""
    cfg = ModelConfig(geometry=Geometry(crop=crop, clip_sec=clip_sec), variant=variant)
    with torch.device("meta"):
        model = build_model(cfg)
    assert tuple(model(*inputs(cfg, 1, "meta")).shape) == (1, 21)
    small_cfg = tiny(variant=variant, geometry=Geometry(crop=crop, clip_sec=clip_sec, fps=10.0))
    small = build_model(small_cfg).eval()
    with torch.no_grad():
        logits = small(*inputs(small_cfg, 1))
    assert logits.shape == (1, 21) and torch.isfinite(logits).all()
    assert token_grid(small_cfg)[0] == (-(-round(clip_sec * 10) // 8), -(-crop // 16), -(-crop // 16))


def test_wrong_geometry_is_a_clear_error():
    cfg = tiny()
    model = build_model(cfg).eval()
    video, audio = inputs(dataclasses.replace(cfg, geometry=dataclasses.replace(cfg.geometry, crop=64)), 1)
    with pytest.raises(ValueError, match="visual features have grid"):
        model(video, audio)


# --------------------------------------------------------------------------------------------------------------------
# Training invariants
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,backbone", [(v, "small") for v in M.VARIANTS] + [("sparsesync", "paper")])
def test_gradients_reach_every_trainable_parameter(variant, backbone):
    """Every variant with the small pair; the paper backbones once (tiny geometry: 25 frames, 32 px)."""
    torch.manual_seed(0)
    cfg = tiny(variant=variant, backbone=backbone, d_model=64 if backbone == "paper" else 32)
    model = build_model(cfg).train()
    video, audio = inputs(cfg, batch=2)
    loss = F.cross_entropy(model(video, audio), torch.tensor([0, 5]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.requires_grad, name
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"zero/non-finite gradient for {name}"


@pytest.mark.parametrize("variant", M.VARIANTS)
def test_batched_equals_per_sample_in_eval(variant):
    torch.manual_seed(0)
    cfg = tiny(variant=variant)
    model = build_model(cfg).eval()
    video, audio = inputs(cfg, batch=3)
    with torch.no_grad():
        batched = model(video, audio)
        single = torch.cat([model(video[i:i + 1], audio[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batched[0], batched[1])  # the inputs matter


def test_frozen_backbones_stay_in_eval_and_get_no_grads():
    torch.manual_seed(0)
    cfg = tiny(train_visual_backbone=False, train_audio_backbone=False)
    model = build_model(cfg)
    model.train()
    assert not model.visual_backbone.training and not model.audio_backbone.training
    assert all(not m.training for m in model.visual_backbone.modules())
    assert model.head.training and model.v_bridge.training
    bn = model.visual_backbone.features[1]
    stats = bn.running_mean.clone()
    video, audio = inputs(cfg)
    model(video, audio).sum().backward()
    assert torch.equal(bn.running_mean, stats)  # eval-mode BatchNorm: running stats untouched
    for name, p in model.named_parameters():
        frozen = name.startswith(("visual_backbone.", "audio_backbone."))
        assert p.requires_grad is not frozen, name
        assert (p.grad is None) is frozen, name
    model.eval().train()
    assert not model.audio_backbone.training


def test_only_visual_frozen():
    model = build_model(tiny(train_visual_backbone=False)).train()
    assert not model.visual_backbone.training and model.audio_backbone.training


# --------------------------------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------------------------------

def test_attention_weights_path_equals_sdpa():
    torch.manual_seed(0)
    attn = M.Attention(d_model=48, n_head=6, attn_pdrop=0.1, resid_pdrop=0.1).eval()
    x, ctx = torch.randn(2, 5, 48), torch.randn(2, 11, 48)
    for c in (None, ctx):
        y_sdpa, none = attn(x, c)
        y_w, w = attn(x, c, need_weights=True)
        assert none is None
        torch.testing.assert_close(y_w, y_sdpa, atol=1e-6, rtol=1e-5)
        assert w.shape == (2, 6, 5, 5 if c is None else 11)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, 5))
        # the weights are the ones that produce the output: recompute the output from them
        b, n, d = x.shape
        v = attn.value(x if c is None else c).view(b, -1, 6, 8).transpose(1, 2)
        y_manual = attn.proj((w @ v).transpose(1, 2).reshape(b, n, d))
        torch.testing.assert_close(y_manual, y_sdpa, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variant", M.VARIANTS)
def test_model_attention_maps(variant):
    torch.manual_seed(0)
    cfg = tiny(variant=variant, depth=2)
    model = build_model(cfg).eval()
    video, audio = inputs(cfg)
    with torch.no_grad():
        logits = model(video, audio)
        logits_w, attn = model(video, audio, return_attention=True)
    torch.testing.assert_close(logits_w, logits, atol=1e-5, rtol=1e-5)
    (t, h, w), (f, ta) = token_grid(cfg)
    k, heads = cfg.n_selectors, cfg.n_head
    if variant == "sparsesync":
        expected = {}
        for i in range(2):
            expected |= {f"v_selector.{i}.attn": (k, k), f"v_selector.{i}.xattn": (k, t * h * w),
                         f"a_selector.{i}.attn": (k, k), f"a_selector.{i}.xattn": (k, f * ta),
                         f"sync.{i}.attn": (2 * k + 2, 2 * k + 2)}
    elif variant == "transformer":
        n = 2 + t * h * w + f * ta
        expected = {f"transformer.{i}.attn": (n, n) for i in range(2)}
    else:
        expected = {}
        for i in range(2):
            expected |= {f"decoder.{i}.attn": (1 + ta, 1 + ta), f"decoder.{i}.xattn": (1 + ta, t * h * w)}
    assert {n: tuple(a.shape) for n, a in attn.items()} == {n: (2, heads, *s) for n, s in expected.items()}
    for a in attn.values():
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))


# --------------------------------------------------------------------------------------------------------------------
# Init, heads alone, config
# --------------------------------------------------------------------------------------------------------------------

def test_official_init():
    torch.manual_seed(0)
    head = build_head(ModelConfig())  # paper-size head only (no backbones)
    assert head.v_selector.selectors.std().item() == pytest.approx(1.0, abs=0.05)
    assert head.sync.off_token.std().item() == pytest.approx(1.0, abs=0.15)
    for p in (head.v_selector.blocks[0].attn.query.weight, head.vis_pos.time_embed, head.v_selector.selectors_pos,
              head.sync.blocks[0].mlp[0].weight):
        assert p.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(head.v_selector.blocks[0].mlp[0].bias == 0)
    assert torch.all(head.sync.ln_f.weight == 1) and torch.all(head.sync.ln_f.bias == 0)
    assert head.classifier.bias is None
    assert head.vis_pos.time_embed.shape == (16, 172) and head.vis_pos.width_embed.shape == (7, 170)
    assert head.aud_pos.freq_embed.shape == (9, 256) and head.aud_pos.time_embed.shape == (20, 256)


def test_positional_concat_order():
    """[time | width | height]: channels 0:172 vary with t only, 172:342 with w only, 342:512 with h only."""
    pe = M.VisualPositionalEmbedding((4, 3, 5), 512)
    pos = pe()  # (t, h, w, D)
    assert pos.shape == (4, 3, 5, 512)
    assert torch.equal(pos[2, 1, 3, :172], pe.time_embed[2])
    assert torch.equal(pos[2, 1, 3, 172:342], pe.width_embed[3])
    assert torch.equal(pos[2, 1, 3, 342:], pe.height_embed[1])
    ape = M.AudioPositionalEmbedding((9, 20), 512)
    apos = ape()
    assert torch.equal(apos[4, 7, :256], ape.freq_embed[4]) and torch.equal(apos[4, 7, 256:], ape.time_embed[7])


def test_head_alone_on_long_inputs():
    """The memory study feeds the head token grids of long clips without building backbones."""
    cfg = ModelConfig(geometry=Geometry(clip_sec=30.0), d_model=64, n_head=4)
    head = build_head(cfg).eval()
    (t, h, w), (f, ta) = token_grid(cfg)
    assert t == 94 and ta == 118
    with torch.no_grad():
        logits = head(torch.randn(1, t, h, w, 64), torch.randn(1, f, ta, 64))
    assert logits.shape == (1, 21)


def test_config_validation_and_roundtrip():
    from paperlib.core.config import apply_overrides, from_dict, to_dict

    cfg = apply_overrides(ModelConfig(), ["variant=transformer", "depth=6", "visual_weights=/x/s3d.pt"])
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    for bad in (dict(variant="lstm"), dict(backbone="vit"), dict(d_model=100, n_head=8), dict(depth=0)):
        with pytest.raises(ValueError):
            build_head(ModelConfig(**bad))


# --------------------------------------------------------------------------------------------------------------------
# Summary / CLI, speed of the small pair
# --------------------------------------------------------------------------------------------------------------------

def test_model_summary_flops():
    s = model_summary(ModelConfig())
    fl = s["flops_forward"]
    assert fl["total"] == sum(fl[k] for k in ("visual_backbone", "audio_backbone", "v_bridge", "a_bridge", "head"))
    assert fl["visual_backbone"] > fl["audio_backbone"] > fl["head"] > 0
    assert 2 * fl["total"] < s["flops_train_step"]["total"] < 3.5 * fl["total"]
    # classifier on token 0: 2 * D * C FLOPs per clip are part of the head
    t = model_summary(ModelConfig(variant="transformer"))
    assert t["flops_forward"]["head"] > 4 * fl["head"]  # 966 tokens vs 34 + selector cross-attention


def test_model_summary_cli_json(capsys):
    from paperlib.commands import main

    assert main(["model-summary", "--json", "--no-flops", "--depth", "6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["total"] == 89_029_996
    assert main(["model-summary", "--variant", "transformer", "--classes", "3", "--no-flops"]) == 0
    assert "29,080,428" in capsys.readouterr().out
