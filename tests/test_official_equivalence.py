"""paperlib's model equals the official SparseSync model (official_fixture.md).

Formula weights are built in the OFFICIAL key layout (keys, shapes and order from the fixture's state_dict JSON),
converted with ``convert_official_state_dict``, loaded strictly into paperlib's model (float64, eval) and fed the
formula inputs; the logits must equal the official model's within 1e-6, and the backbone/selector summaries localise
any mismatch. Reference numbers: tests/fixtures/official/ (copied from the official model's run).

Cost sharing (the paper-size float64 forward takes ~30-60 s on the 2-core CI machine): the backbones and bridge of
L1_C21, L3_C21 and L3_C3 have identical keys and shapes, hence identical formula weights. The first test to run pushes
the inputs through the complete converted model (``model(video, audio)``) and caches the backbone outputs; a later
test asserts that its converted backbone and bridge weights are bit-identical to the cached run's, then runs its own
bridge and head on the cached backbone outputs. Every test still checks its logits and its selector summaries.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import pytest
import torch

from paperlib.model.checkpoints import convert_official_state_dict
from paperlib.model.sparsesync import SyncModel, build_model

FIXTURES = Path(__file__).parent / "fixtures" / "official"
TOL = 1e-6


def formula_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's weight recipe for one official state_dict entry (official_fixture.md)."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    n = math.prod(shape)
    phase = (zlib.crc32(key.encode("utf-8")) % 10007) / 10007 * 2 * math.pi
    wave = torch.sin(0.618 * torch.arange(n, dtype=torch.float64) + phase).reshape(shape)
    if leaf == "running_mean":
        return 0.1 * wave
    if leaf == "running_var":
        return 1.0 + 0.5 * wave.abs()
    if len(shape) == 1 and leaf == "weight":
        return 1.0 + 0.1 * wave
    if len(shape) == 1 and leaf == "bias":
        return 0.05 * wave
    if leaf == "weight" and len(shape) >= 2 and "embed" not in key:
        return wave * math.sqrt(2 / math.prod(shape[1:]))
    return 0.5 * wave


def formula_state_dict(name: str) -> dict[str, torch.Tensor]:
    entries = json.loads((FIXTURES / f"official_state_dict_{name}.json").read_text())["state_dict"]
    return {e["key"]: formula_tensor(e["key"], tuple(e["shape"])) for e in entries}


def formula_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    t, c, h, w = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (125, 3, 224, 224)], indexing="ij")
    video = torch.sin(0.05 * h + 0.07 * w + 0.3 * t + 1.1 * c) + 0.5 * torch.cos(0.11 * w - 0.13 * t * (c + 1))
    f, a = torch.meshgrid(torch.arange(257, dtype=torch.float64), torch.arange(626, dtype=torch.float64), indexing="ij")
    audio = torch.sin(0.031 * f * (1 + 0.01 * a)) + 0.3 * torch.cos(0.2 * a + 0.01 * f * f)
    return video[None], audio[None, None]  # (1, 125, 3, 224, 224), (1, 1, 257, 626)


def _assert_summary(name: str, got: torch.Tensor, ref: dict) -> None:
    assert list(got.shape) == ref["shape"], f"{name}: shape {list(got.shape)} vs official {ref['shape']}"
    first8 = got.flatten()[:8]
    err = (first8 - torch.tensor(ref["first8"], dtype=torch.float64)).abs().max().item()
    assert err < TOL, f"{name}: first values differ by {err:.3g}"
    assert abs(got.mean().item() - ref["mean"]) < TOL, f"{name}: mean {got.mean().item()} vs {ref['mean']}"
    assert abs(got.std().item() - ref["std"]) < TOL, f"{name}: std {got.std().item()} vs {ref['std']}"


@pytest.fixture(scope="module")
def shared() -> dict:
    return {}


def _check(name: str, layers: int, classes: int, shared: dict) -> None:
    ref = json.loads((FIXTURES / f"official_reference_outputs_{name}.json").read_text())
    paper_sd, cfg = convert_official_state_dict(formula_state_dict(name))
    assert (cfg.depth, cfg.geometry.num_classes, cfg.variant) == (layers, classes, "sparsesync")
    model = build_model(cfg).double()
    model.load_state_dict(paper_sd, strict=True)
    model.eval()
    assert isinstance(model, SyncModel)
    rec: dict[str, torch.Tensor] = {}
    model.head.v_selector.register_forward_hook(lambda m, i, o: rec.__setitem__("visual_selectors", o[0]))
    model.head.a_selector.register_forward_hook(lambda m, i, o: rec.__setitem__("audio_selectors", o[0]))
    frontend = {k: v for k, v in paper_sd.items() if k.startswith(("visual_backbone.", "audio_backbone.", "v_bridge."))}
    with torch.no_grad():
        if "backbone_out" not in shared:
            model.visual_backbone.register_forward_hook(lambda m, i, o: rec.__setitem__("visual_backbone", o))
            model.audio_backbone.register_forward_hook(lambda m, i, o: rec.__setitem__("audio_backbone", o))
            logits = model(*formula_inputs())  # the complete converted model, end to end
            shared["backbone_out"] = (rec["visual_backbone"], rec["audio_backbone"])
            shared["frontend"] = frontend
        else:
            assert frontend.keys() == shared["frontend"].keys()
            assert all(torch.equal(v, shared["frontend"][k]) for k, v in frontend.items())
            vis, aud = shared["backbone_out"]
            vis_tokens = model.v_bridge(vis).permute(0, 2, 3, 4, 1)  # (B, t, h, w, D)
            aud_tokens = model.a_bridge(aud).permute(0, 2, 3, 1)  # (B, f, ta, D)
            logits = model.head(vis_tokens, aud_tokens)
    vis, aud = shared["backbone_out"]
    summaries = ref["summaries"]
    _assert_summary("visual_backbone", vis.permute(0, 2, 1, 3, 4), summaries["visual_backbone"])  # official (B,t,C,h,w)
    _assert_summary("audio_backbone", aud, summaries["audio_backbone"])
    _assert_summary("visual_selectors", rec["visual_selectors"], summaries["visual_selectors"])
    _assert_summary("audio_selectors", rec["audio_selectors"], summaries["audio_selectors"])
    expected = torch.tensor(ref["logits"], dtype=torch.float64)
    assert logits.shape == (1, classes)
    err = (logits[0] - expected).abs().max().item()
    assert err < TOL, f"{name}: logits differ from the official model by {err:.3g}"


def test_equivalence_L1_C21(shared):
    _check("L1_C21", 1, 21, shared)


@pytest.mark.slow
def test_equivalence_L3_C21(shared):
    _check("L3_C21", 3, 21, shared)


@pytest.mark.slow
def test_equivalence_L3_C3(shared):
    _check("L3_C3", 3, 3, shared)


def test_fixture_param_counts_match_model():
    """The fixture's trainable-parameter counts equal paperlib's (meta device, no compute)."""
    for name in ("L1_C21", "L3_C21", "L3_C3"):
        meta = json.loads((FIXTURES / f"official_state_dict_{name}.json").read_text())
        sd, cfg = convert_official_state_dict(
            {e["key"]: torch.empty(e["shape"], device="meta") for e in meta["state_dict"]})
        with torch.device("meta"):
            model = build_model(cfg)
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == meta["n_params_trainable"]
        assert sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var",
                                                                        "num_batches_tracked"))) == \
            meta["n_params_trainable"]
