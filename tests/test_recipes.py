"""Tests of paperlib.engine.recipes (getting off the chance plateau): time codes, the time-anchored initialisation, the
auxiliary losses, the recipe's training objective, and a fast end-to-end check that the paper's head leaves the chance
plateau on a trivially easy synthetic task within seconds.

The easy task ("ideal tokens"): the bridge outputs are given directly; every visual cell carries a smooth random
envelope at its time, every audio cell the same envelope at the audio window's times (shifted by the offset), plus
noise. Each stream alone says nothing about the offset. The paper's head (selectors + sync transformer + classifier,
official layers) is trained with the recipe (time-anchored init + the attention-matching aux loss); the loss must fall
below 0.8 ln C and shuffling the audio across the batch must bring the accuracy back to chance.
"""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from paperlib.core.geometry import Geometry
from paperlib.engine import recipes
from paperlib.model.sparsesync import ModelConfig, build_head

CLIP = 5.0


# ----------------------------------------------------------------------------------------------------------------------
# pieces


def test_time_code_peaks_at_zero_lag_and_has_the_requested_rms():
    t = torch.linspace(0, CLIP, 101)
    code = recipes.time_code(t, 22, CLIP, amplitude=1.0)
    assert code.shape == (101, 22)
    sim = code @ code[50]  # similarity to t = 2.5 s
    assert int(sim.argmax()) == 50
    assert sim[50] > 2 * sim[40].abs() and sim[50] > 2 * sim[60].abs()  # +-0.5 s away: far lower
    full = recipes.time_code(torch.linspace(0, 2 * CLIP, 2001)[:-1], 22, CLIP)
    assert full.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=0.02)
    odd = recipes.time_code(t, 7, CLIP)
    assert odd.shape == (101, 7) and torch.all(odd[:, -1] == 0)
    with pytest.raises(ValueError, match="channels"):
        recipes.time_code(t, 1, CLIP)


def test_time_channel_layout_matches_the_positional_tables():
    head = build_head(ModelConfig(geometry=Geometry(crop=48), backbone="small", d_model=64, n_head=4, depth=1,
                                  n_selectors=4))
    vch, ach = recipes.visual_time_channels(64), recipes.audio_time_channels(64)
    assert vch.stop - vch.start == head.vis_pos.time_embed.shape[1]
    assert ach.stop - ach.start == head.aud_pos.time_embed.shape[1]
    with torch.no_grad():
        head.vis_pos.time_embed.fill_(7.0)
        head.aud_pos.time_embed.fill_(9.0)
    assert torch.all(head.vis_pos()[..., vch] == 7.0) and not torch.any(head.vis_pos()[..., vch.stop:] == 7.0)
    assert torch.all(head.aud_pos()[..., ach] == 9.0) and not torch.any(head.aud_pos()[..., :ach.start] == 9.0)


def _head(k: int = 8, **kw) -> torch.nn.Module:
    cfg = ModelConfig(geometry=Geometry(crop=48), backbone="small", d_model=kw.pop("d_model", 64), n_head=4,
                      depth=kw.pop("depth", 2), n_selectors=k, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0, **kw)
    torch.manual_seed(0)
    return build_head(cfg)  # small backbones at 48 px: visual grid (16, 3, 3), audio grid (9, 20)


def test_anchored_selectors_attend_to_their_own_time_from_step_0():
    head = recipes.time_anchored_init(_head(k=8), CLIP)
    head.eval()
    g = torch.Generator().manual_seed(0)
    vis, aud = torch.randn(2, 16, 3, 3, 64, generator=g), torch.randn(2, 9, 20, 64, generator=g)
    with torch.no_grad():
        _, attn = head(vis, aud, return_attention=True)
    sel_t = recipes.cell_times(8, CLIP)
    v = attn["v_selector.0.xattn"].view(2, 4, 8, 16, 9).sum(-1).mean((0, 1))  # (k, t): over space, heads, batch
    a = attn["a_selector.0.xattn"].view(2, 4, 8, 9, 20).sum(-2).mean((0, 1))  # (k, ta)
    for w, n in ((v, 16), (a, 20)):
        peak_t = recipes.cell_times(n, CLIP)[w.argmax(-1)]
        assert torch.all((peak_t - sel_t).abs() <= CLIP / n + 1e-6), (peak_t, sel_t)
        assert float(w.max(-1).values.min()) > 0.3  # peaked, not uniform (uniform would be 1/n)
    # official init for comparison: near-uniform over time
    official = _head(k=8)
    official.eval()
    with torch.no_grad():
        _, attn0 = official(vis, aud, return_attention=True)
    v0 = attn0["v_selector.0.xattn"].view(2, 4, 8, 16, 9).sum(-1).mean((0, 1))
    assert float(v0.max()) < 0.15


@pytest.mark.parametrize("variant", ["sparsesync", "transformer", "avst_dec"])
def test_anchored_init_keeps_the_architecture_and_rejects_other_heads(variant):
    head = _head(variant=variant)
    before = {k: v.shape for k, v in head.state_dict().items()}
    recipes.time_anchored_init(head, CLIP, modality_flag=8.0)
    assert {k: v.shape for k, v in head.state_dict().items()} == before
    assert all(torch.isfinite(p).all() for p in head.parameters())
    with pytest.raises(TypeError, match="SparseSyncHead, TransformerHead or AvstDecHead"):
        recipes.time_anchored_init(torch.nn.Linear(64, 64), CLIP)
    with pytest.raises(ValueError, match="too small"):
        recipes.time_anchored_init(_head(variant=variant, d_model=4), CLIP)  # 4 heads of width 1


def test_modality_flag_sends_first_block_attention_across_modalities():
    head = recipes.time_anchored_init(_head(k=8), CLIP, modality_flag=8.0)
    head.eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        _, attn = head(torch.randn(2, 16, 3, 3, 64, generator=g), torch.randn(2, 9, 20, 64, generator=g),
                       return_attention=True)
    w = attn["sync.0.attn"].mean(1)  # (B, 18, 18): [OFF, 8 visual, MOD, 8 audio]
    v2a, v2v = float(w[:, 1:9, 10:].sum(-1).mean()), float(w[:, 1:9, 1:9].sum(-1).mean())
    a2v, a2a = float(w[:, 10:, 1:9].sum(-1).mean()), float(w[:, 10:, 10:].sum(-1).mean())
    assert v2a > 0.4 and a2v > 0.4  # (the rest goes to OFF / MOD, which carry no flag)
    assert v2a > 20 * v2v and a2v > 20 * a2a  # a token (itself included) is not attended by its own modality


def test_sparsesync_parts_equals_the_head_forward():
    head = recipes.time_anchored_init(_head(k=4, depth=1), CLIP, modality_flag=8.0)
    head.eval()
    g = torch.Generator().manual_seed(2)
    vis, aud = torch.randn(3, 16, 3, 3, 64, generator=g), torch.randn(3, 9, 20, 64, generator=g)
    with torch.no_grad():
        parts = recipes.sparsesync_parts(head, vis, aud)
        ref = head(vis, aud)
    torch.testing.assert_close(parts["logits"], ref)
    assert parts["q"].shape == parts["k"].shape == (3, 4, 2 + 4 + 4, 16)


def _modality_masses(w: torch.Tensor, n_v: int) -> tuple[float, float, float, float]:
    """First-block attention (B, N, N) over [OFF; n_v visual; MOD; audio]: mean mass of visual rows on audio / visual
    tokens and of audio rows on visual / audio tokens."""
    v_rows, a_rows = w[:, 1:1 + n_v], w[:, 2 + n_v:]
    return (float(v_rows[..., 2 + n_v:].sum(-1).mean()), float(v_rows[..., 1:1 + n_v].sum(-1).mean()),
            float(a_rows[..., 1:1 + n_v].sum(-1).mean()), float(a_rows[..., 2 + n_v:].sum(-1).mean()))


def test_transformer_anchor_codes_the_tables_and_makes_the_first_block_compare_across_modalities():
    head = recipes.time_anchored_init(_head(variant="transformer"), CLIP)  # d 64, 4 heads of 16: flags 15/31/47/63
    flags = [15, 31, 47, 63]
    vch, ach = recipes.visual_time_channels(64), recipes.audio_time_channels(64)
    v_keep = [c for c in range(vch.start, vch.stop) if c not in flags]
    a_keep = [c - ach.start for c in range(ach.start, ach.stop) if c not in flags]
    # time codes (damped: amplitude x sync_code_gain 0.5) in the time channels the flags leave free
    torch.testing.assert_close(head.vis_pos.time_embed[:, v_keep],
                               recipes.time_code(recipes.cell_times(16, CLIP), len(v_keep), CLIP, 0.5))
    torch.testing.assert_close(head.aud_pos.time_embed[:, a_keep],
                               recipes.time_code(recipes.cell_times(20, CLIP), len(a_keep), CLIP, 0.5))
    # the flag: the input LayerNorms' bias, +1 visual / -1 audio, with every positional table 0 there
    assert torch.all(head.vis_pos()[..., flags] == 0) and torch.all(head.aud_pos()[..., flags] == 0)
    assert torch.all(head.vis_norm.weight[flags] == 0) and torch.all(head.vis_norm.bias[flags] == 1)
    assert torch.all(head.aud_norm.weight[flags] == 0) and torch.all(head.aud_norm.bias[flags] == -1)
    rest = [c for c in range(64) if c not in flags]
    assert torch.all(head.vis_norm.weight[rest] == 1) and torch.all(head.aud_norm.bias[rest] == 0)
    # first block: query = key = identity on the content channels, +g / -g on the flags; passthrough first and last
    attn0 = head.blocks[0].attn
    eye = torch.eye(64)
    assert torch.equal(attn0.query.weight[rest][:, rest], eye[rest][:, rest])
    assert torch.equal(attn0.key.weight[rest][:, rest], eye[rest][:, rest])
    g = math.sqrt(8.0 * math.sqrt(16))
    torch.testing.assert_close(attn0.query.weight[flags][:, flags], g * torch.eye(4))
    torch.testing.assert_close(attn0.key.weight[flags][:, flags], -g * torch.eye(4))
    for attn in (attn0, head.blocks[-1].attn):
        assert torch.equal(attn.value.weight, eye) and torch.equal(attn.proj.weight, eye)
    assert not torch.equal(head.blocks[-1].attn.query.weight, eye)  # only the first block compares
    # functional: every visual token looks at the audio tokens and vice versa
    head.eval()
    g_ = torch.Generator().manual_seed(1)
    with torch.no_grad():
        logits, attn = head(torch.randn(2, 16, 3, 3, 64, generator=g_), torch.randn(2, 9, 20, 64, generator=g_),
                            return_attention=True)
    assert torch.isfinite(logits).all()
    v2a, v2v, a2v, a2a = _modality_masses(attn["transformer.0.attn"].mean(1), 16 * 3 * 3)
    assert v2a > 0.4 and a2v > 0.4  # (the rest goes to OFF / MOD, which carry no flag)
    assert v2a > 20 * v2v and a2v > 20 * a2a
    assert recipes.anchored_parts(head) == {
        "head": "transformer", "parts": ["time_codes", "passthrough", "identity_qk", "modality_flag"],
        "not_applicable": {"selector_anchors": recipes.NOT_APPLICABLE["transformer"]["selector_anchors"]}}


def test_avst_dec_anchor_codes_the_tables_and_makes_the_first_cross_attention_compare_content():
    fresh = _head(variant="avst_dec")
    head = recipes.time_anchored_init(_head(variant="avst_dec"), CLIP)  # the same fresh head (same seed)
    vch, ach = recipes.visual_time_channels(64), recipes.audio_time_channels(64)
    torch.testing.assert_close(head.vis_pos.time_embed,
                               recipes.time_code(recipes.cell_times(16, CLIP), vch.stop - vch.start, CLIP, 0.5))
    torch.testing.assert_close(head.aud_time_pos[:, ach],
                               recipes.time_code(recipes.cell_times(20, CLIP), ach.stop - ach.start, CLIP, 0.5))
    assert torch.equal(head.aud_time_pos[:, :ach.start], fresh.aud_time_pos[:, :ach.start])  # other channels as built
    eye = torch.eye(64)
    x0 = head.blocks[0].xattn
    assert torch.equal(x0.query.weight, eye) and torch.equal(x0.key.weight, eye)
    for attn in (x0, head.blocks[-1].attn):  # what an audio time picks from the video; OFF's read-out of it
        assert torch.equal(attn.value.weight, eye) and torch.equal(attn.proj.weight, eye)
    # no modality flag: the input LayerNorms and the self-attention's query/key stay as built
    for name in ("vis_norm.weight", "vis_norm.bias", "aud_norm.weight", "aud_norm.bias", "blocks.0.attn.query.weight",
                 "blocks.0.attn.key.weight", "blocks.1.xattn.query.weight"):
        assert torch.equal(head.state_dict()[name], fresh.state_dict()[name]), name
    parts = recipes.anchored_parts(head, modality_flag=8.0)
    assert parts["parts"] == ["time_codes", "passthrough", "identity_qk"]
    assert set(parts["not_applicable"]) == {"selector_anchors", "modality_flag"}
    assert recipes.anchored_parts(_head(), modality_flag=0.0, sync_identity_qk=0.0)["parts"] == [
        "time_codes", "selector_anchors", "passthrough"]


@pytest.mark.parametrize("variant", ["sparsesync", "transformer", "avst_dec"])
def test_recipe_parts_equal_the_head_forward(variant):
    head = recipes.time_anchored_init(_head(k=4, variant=variant), CLIP)
    head.eval()
    g = torch.Generator().manual_seed(2)
    vis, aud = torch.randn(3, 16, 3, 3, 64, generator=g), torch.randn(3, 9, 20, 64, generator=g)
    with torch.no_grad():
        logits, view = recipes.recipe_parts(head, vis, aud)
        ref = head(vis, aud)
    torch.testing.assert_close(logits, ref)
    n_q, n_k = {"sparsesync": (4, 4), "transformer": (144, 180), "avst_dec": (20, 144)}[variant]
    assert view.q.shape == (3, 4, n_q, 16) and view.k.shape == (3, 4, n_k, 16)
    assert view.visual_queries is (variant != "avst_dec")
    with pytest.raises(TypeError, match="AvstDecHead"):
        recipes.recipe_parts(torch.nn.Linear(64, 64), vis, aud)


def _shifted_pair(offset_s: float, n_v: int = 16, n_a: int = 20, d: int = 8, seed: int = 0):
    """Visual and audio token grids holding the same random signal, the audio one shifted by ``offset_s``."""
    g = torch.Generator().manual_seed(seed)
    freqs, phases = torch.rand(6, generator=g) * 1.0 + 0.2, torch.rand(6, generator=g) * 6.3
    u = torch.randn(d, generator=g)

    def sig(t):
        return torch.sin(2 * math.pi * freqs[None] * t[:, None] + phases[None]).sum(-1)  # (n,)

    tv, ta = recipes.cell_times(n_v, CLIP).float(), recipes.cell_times(n_a, CLIP).float()
    vis = (sig(tv)[:, None] * u)[None, :, None, None, :].expand(1, n_v, 2, 2, d).clone()  # (1, t, h, w, D)
    aud = (sig(ta + offset_s)[:, None] * u)[None, None].expand(1, 3, n_a, d).clone()  # (1, f, ta, D)
    return vis, aud


@pytest.mark.parametrize("offset", [-1.6, -0.4, 0.0, 0.8, 1.8])
def test_xcorr_logits_pick_the_true_offset(offset):
    grid = torch.linspace(-2, 2, 21)
    vis, aud = _shifted_pair(offset)
    logits = recipes.xcorr_logits(vis, aud, CLIP, grid)
    assert logits.shape == (1, 21)
    assert abs(int(logits.argmax()) - int(torch.argmin((grid - offset).abs()))) <= 1
    # each stream alone holds no offset: with the audio of another signal the choice is not the true one reliably
    other = recipes.xcorr_logits(vis, _shifted_pair(offset, seed=5)[1], CLIP, grid)
    assert float(other.max() - other.min()) < float(logits.max() - logits.min())


def test_lag_kernel_is_normalised_and_centred_on_the_class_lag():
    grid = torch.tensor([-1.0, 0.0, 1.0])
    k = recipes.lag_kernel(10, 10, CLIP, grid, 0.2)
    torch.testing.assert_close(k.sum((1, 2)), torch.ones(3))
    tv = recipes.cell_times(10, CLIP)
    i, j = divmod(int(k[2].argmax()), 10)
    assert float(tv[i] - tv[j]) == pytest.approx(1.0)


def test_sync_match_loss_is_low_for_matching_attention_and_ignores_rows_without_a_match():
    n_v = n_a = 10
    tv = recipes.cell_times(n_v, CLIP)
    off = torch.tensor([1.0])
    code_q = recipes.time_code(tv - 1.0, 16, CLIP, 0.6)  # visual token s looks for audio time tv_s - o
    code_k = recipes.time_code(recipes.cell_times(n_a, CLIP), 16, CLIP, 0.6)
    q = torch.zeros(1, 1, 2 + n_v + n_a, 16)
    k = torch.zeros_like(q)
    q[0, 0, 1:1 + n_v] = code_q
    k[0, 0, 2 + n_v:] = code_k
    good = recipes.sync_match_loss(q, k, n_v, n_a, CLIP, off)
    bad = recipes.sync_match_loss(q, k, n_v, n_a, CLIP, torch.tensor([-1.0]))
    flat = recipes.sync_match_loss(torch.zeros_like(q), k, n_v, n_a, CLIP, off)
    assert float(good) < float(flat) < float(bad)
    assert math.isfinite(float(recipes.sync_match_loss(q, k, n_v, n_a, CLIP, torch.tensor([9.0]))))  # no valid row


def _view_with_codes(view, offset: float, sign_as_visual_queries: bool | None = None):
    """The view's cells, with queries that point (by their time codes) at the keys of the moment ``offset`` gives."""
    visual = view.visual_queries if sign_as_visual_queries is None else sign_as_visual_queries
    tq = recipes.cell_times(view.n_q_cells, CLIP)[view.q_cell]
    tk = recipes.cell_times(view.n_k_cells, CLIP)[view.k_cell]
    want = tq - offset if visual else tq + offset
    return recipes.MatchView(recipes.time_code(want, 16, CLIP, 0.6)[None, None],
                             recipes.time_code(tk, 16, CLIP, 0.6)[None, None], view.q_cell, view.n_q_cells,
                             view.k_cell, view.n_k_cells, view.visual_queries)


@pytest.mark.parametrize("variant", ["sparsesync", "transformer", "avst_dec"])
def test_match_loss_is_lowest_when_the_first_attention_points_at_the_same_moment(variant):
    """Queries built by hand to point at the keys of the true moment (visual time tv = audio time ta + o) give a lower
    matching loss than queries that point nowhere, at the other sign's moment, or at another offset's."""
    head = recipes.time_anchored_init(_head(k=8, variant=variant), CLIP)
    with torch.no_grad():
        _, view = recipes.recipe_parts(head, torch.randn(1, 16, 3, 3, 64), torch.randn(1, 9, 20, 64))
    off = torch.tensor([1.0])
    good = recipes.match_loss(_view_with_codes(view, 1.0), CLIP, off)
    flat_view = _view_with_codes(view, 1.0)
    flat_view.q = torch.zeros_like(flat_view.q)
    flat = recipes.match_loss(flat_view, CLIP, off)
    wrong_sign = recipes.match_loss(_view_with_codes(view, 1.0, not view.visual_queries), CLIP, off)
    other = recipes.match_loss(_view_with_codes(view, -0.6), CLIP, off)
    assert float(good) < float(flat) < min(float(wrong_sign), float(other)), (good, flat, wrong_sign, other)
    assert math.isfinite(float(recipes.match_loss(view, CLIP, torch.tensor([9.0]))))  # no valid row


def _ideal(variant: str, d: int = 32, depth: int = 1):
    grids = ((16, 3, 3), (9, 20))
    cfg = ModelConfig(geometry=Geometry(crop=48), variant=variant, backbone="small", d_model=d, n_head=2, depth=depth,
                      n_selectors=16, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    torch.manual_seed(0)
    head = recipes.time_anchored_init(build_head(cfg, *grids), CLIP)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(5, d, generator=g) / math.sqrt(d)
    return head, grids, g, u


@pytest.mark.parametrize("variant", ["transformer", "avst_dec"])
def test_anchored_first_attention_finds_the_matching_moments_of_ideal_features(variant):
    """Ideal bridge outputs (matching moments hold similar vectors): the anchored head's first matching attention
    (identity query/key) already scores the true offsets better than other offsets or the offsets' negatives, which
    checks the token times and the sign convention of each head's view."""
    head, grids, g, u = _ideal(variant)
    grid = torch.linspace(-2, 2, 21)
    vis, aud, y = _easy_batch(32, g, torch.arange(21), grid, u, grids)
    with torch.no_grad():
        logits, view = recipes.recipe_parts(head, vis, aud)
        true = float(recipes.match_loss(view, CLIP, grid[y]))
        other = float(recipes.match_loss(view, CLIP, grid[(y + 7) % 21]))
        negated = float(recipes.match_loss(view, CLIP, -grid[y]))
    assert torch.isfinite(logits).all()
    assert true < other - 0.3 and true < negated - 0.3, (true, other, negated)


@pytest.mark.parametrize("variant", ["transformer", "avst_dec"])
def test_match_loss_trains_the_first_attention_of_the_other_heads(variant):
    """A few dozen Adam steps on the matching loss alone lower it (ideal features; < 1 s each)."""
    head, grids, g, u = _ideal(variant)
    grid = torch.linspace(-2, 2, 21)
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        vis, aud, y = _easy_batch(8, g, torch.arange(21), grid, u, grids)
        _, view = recipes.recipe_parts(head, vis, aud)
        loss = recipes.match_loss(view, CLIP, grid[y])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, (first, last)


def test_aux_weight_schedule():
    assert recipes.aux_weight(0, 2.0, 10, 10) == 2.0
    assert recipes.aux_weight(9, 2.0, 10, 10) == 2.0
    assert recipes.aux_weight(15, 2.0, 10, 10) == pytest.approx(1.0)
    assert recipes.aux_weight(20, 2.0, 10, 10) == 0.0
    assert recipes.aux_weight(10**6, 2.0, 10, 0) == 0.0
    with pytest.raises(ValueError):
        recipes.aux_weight(-1)


def test_aux_loss_model_keeps_the_paper_logits_and_follows_its_schedule():
    from paperlib.model.sparsesync import build_model, input_shapes

    cfg = ModelConfig(geometry=Geometry(crop=32, clip_sec=1.0), backbone="small", d_model=32, n_head=4, depth=2,
                      n_selectors=4, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    torch.manual_seed(0)
    model = build_model(cfg)
    recipes.time_anchored_init(model.head, cfg.geometry.clip_sec, modality_flag=8.0)
    grid = torch.linspace(-0.4, 0.4, 5)
    wrapped = recipes.AuxLossModel(model, cfg.geometry.clip_sec, grid, xcorr_weight=1.0, match_weight=0.5, hold_steps=2,
                                   decay_steps=2)
    shapes = input_shapes(cfg)
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(2, *shapes["video"], generator=g), torch.randn(2, *shapes["audio"], generator=g)
    target = torch.tensor([0, 3])
    model.eval()
    with torch.no_grad():
        logits, total, terms = wrapped(video, audio, target, step=0)
        torch.testing.assert_close(logits, model(video, audio))
        assert set(terms) == {"xcorr", "match"} and all(math.isfinite(v) for v in terms.values())
        assert all(t.dim() == 0 and not t.requires_grad for t in terms.values())  # no host sync, no graph kept
        terms = {k: float(v) for k, v in terms.items()}
        assert float(total) == pytest.approx(terms["xcorr"] + 0.5 * terms["match"], rel=1e-5)
        _, total3, terms3 = wrapped(video, audio, target, step=3)  # halfway through the decay
        assert float(total3) == pytest.approx(0.5 * (float(terms3["xcorr"]) + 0.5 * float(terms3["match"])), rel=1e-5)
        logits_off, total_off, terms_off = wrapped(video, audio, target, step=4)
        assert float(total_off) == 0.0 and terms_off == {}
        torch.testing.assert_close(logits_off, logits)
    model.train()
    _, total, _ = wrapped(video, audio, target, step=0)
    total.backward()  # the auxiliary losses reach the backbones and the head
    assert model.visual_backbone.features[0].weight.grad.abs().sum() > 0
    assert model.head.sync.blocks[0].attn.query.weight.grad.abs().sum() > 0
    stranger = torch.nn.Module()
    stranger.head = torch.nn.Linear(32, 32)  # a head outside the model family: no matching attention known
    with pytest.raises(TypeError, match="AvstDecHead"):
        recipes.AuxLossModel(stranger, cfg.geometry.clip_sec, grid, match_weight=1.0)
    recipes.AuxLossModel(stranger, cfg.geometry.clip_sec, grid, match_weight=0.0)  # xcorr alone needs no head


@pytest.mark.parametrize("variant", ["transformer", "avst_dec"])
def test_aux_loss_model_keeps_the_logits_of_the_other_heads_and_trains_their_first_attention(variant):
    from paperlib.model.sparsesync import build_model, input_shapes

    cfg = ModelConfig(geometry=Geometry(crop=32, clip_sec=1.0), variant=variant, backbone="small", d_model=32,
                      n_head=4, depth=2, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    torch.manual_seed(0)
    model = build_model(cfg)
    recipes.time_anchored_init(model.head, cfg.geometry.clip_sec)
    wrapped = recipes.AuxLossModel(model, cfg.geometry.clip_sec, torch.linspace(-0.4, 0.4, 5), xcorr_weight=1.0,
                                   match_weight=0.5)
    shapes = input_shapes(cfg)
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(2, *shapes["video"], generator=g), torch.randn(2, *shapes["audio"], generator=g)
    target = torch.tensor([1, 3])
    model.eval()
    with torch.no_grad():
        logits, total, terms = wrapped(video, audio, target, step=0)
        torch.testing.assert_close(logits, model(video, audio))
        assert set(terms) == {"xcorr", "match"} and all(math.isfinite(float(v)) for v in terms.values())
        assert float(total) == pytest.approx(float(terms["xcorr"]) + 0.5 * float(terms["match"]), rel=1e-5)
    model.train()
    _, total, _ = wrapped(video, audio, target, step=0)
    total.backward()
    first = model.head.blocks[0].attn if variant == "transformer" else model.head.blocks[0].xattn
    assert first.query.weight.grad.abs().sum() > 0 and first.key.weight.grad.abs().sum() > 0


def test_recipe_objective_is_the_papers_loss_plus_the_weighted_aux_terms():
    """The training-step contract: ``loss, logs = objective(batch, step)`` with ``logs["loss"]`` the paper's
    cross-entropy and ``logs["aux_loss"]`` the weighted aux sum; the initialisation and the event records."""
    from paperlib.engine import config as RC
    from paperlib.engine.objectives import CrossEntropyObjective
    from paperlib.model.sparsesync import build_model, input_shapes

    cfg = RC.resolve("smoke", ["train.recipe_init=true", "train.aux_xcorr_weight=1.0", "train.aux_match_weight=0.5",
                               "train.aux_hold_steps=2", "train.aux_decay_steps=2"])
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    objective = recipes.recipe_objective(model, cfg)
    assert objective.model is model and list(objective.parameters()) == list(model.parameters())
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    event = objective.initialise()
    assert event["event"] == "recipe_init" and event["applied"]["time_anchored_init"] is True
    assert not torch.equal(fresh["head.v_selector.selectors"], model.state_dict()["head.v_selector.selectors"])
    assert objective.start_event() == {"event": "aux_losses", "xcorr": 1.0, "match": 0.5, "hold_steps": 2,
                                       "decay_steps": 2}
    shapes = input_shapes(cfg.model)
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(2, *shapes["video"], generator=g),
             "audio": torch.randn(2, *shapes["audio"], generator=g), "target": torch.tensor([0, 2])}
    with torch.no_grad():
        paper = F.cross_entropy(model(batch["video"], batch["audio"]).float(), batch["target"])
        loss, logs = objective(batch, 0)
        torch.testing.assert_close(logs["loss"], paper)
        assert set(logs) == {"loss", "aux_loss", "aux_xcorr", "aux_match"} and float(logs["aux_loss"]) > 0
        torch.testing.assert_close(loss, paper + logs["aux_loss"])
        # the unweighted terms are logged beside their weighted sum (weights 1.0 and 0.5 while held)
        torch.testing.assert_close(logs["aux_loss"], logs["aux_xcorr"] + 0.5 * logs["aux_match"])
        loss_off, logs_off = objective(batch, 4)  # both aux weights decayed to 0
        torch.testing.assert_close(loss_off, logs_off["loss"])
        assert float(logs_off["aux_loss"]) == 0.0
        plain_loss, plain_logs = CrossEntropyObjective(model)(batch, 0)
        torch.testing.assert_close(plain_loss, paper)
        assert set(plain_logs) == {"loss"}
    # nothing configured: no recipe objective; recipe_init alone: the paper's loss, no aux terms, no aux event
    assert recipes.recipe_objective(model, RC.resolve("smoke")) is None
    init_only = recipes.recipe_objective(model, RC.resolve("smoke", ["train.recipe_init=true"]))
    assert init_only.start_event() is None
    with torch.no_grad():
        assert set(init_only(batch, 0)[1]) == {"loss"}
    # every head of the family gets the recipe; the matching loss needs recipe_init only where selectors need anchors
    other = RC.resolve("smoke", ["model.variant=avst_dec", "train.recipe_init=true", "train.aux_match_weight=1.0"])
    avst = recipes.recipe_objective(build_model(other.model), other)
    applied = avst.initialise()["applied"]
    assert applied["time_anchored_init"] is True and applied["head"] == "avst_dec"
    assert "modality_flag" in applied["not_applicable"] and "modality_flag" not in applied["parts"]
    assert avst.start_event()["match"] == 1.0
    for variant, match in (("sparsesync", 0.0), ("transformer", 1.0), ("avst_dec", 1.0)):
        no_init = RC.resolve("smoke", [f"model.variant={variant}", "train.aux_match_weight=1.0"])
        objective = recipes.recipe_objective(build_model(no_init.model), no_init)
        assert (objective.start_event()["match"] if objective else 0.0) == match, variant


# ----------------------------------------------------------------------------------------------------------------------
# end to end: leaving the plateau in seconds


def _easy_batch(n: int, g: torch.Generator, classes: torch.Tensor, grid: torch.Tensor, u: torch.Tensor,
                grids=((16, 1, 1), (1, 20)), noise: float = 0.3):
    """Ideal bridge outputs: each cell holds the local shape of a smooth random signal around its time (the signal at
    5 nearby lags, each along its own direction of ``u`` (5, D)), so that matching cells have similar vectors."""
    (t, h, w), (f, ta) = grids
    d = u.shape[1]
    tgt = classes[torch.randint(len(classes), (n,), generator=g)]
    off = grid[tgt]
    v0 = torch.rand(n, generator=g) * 3.0 + 2.0  # visual window start inside a long signal
    fr = torch.rand(n, 5, generator=g) * 1.5 + 0.2
    ph = torch.rand(n, 5, generator=g) * 6.3
    lags = torch.linspace(-0.3, 0.3, u.shape[0])

    def feat(times):  # (n, cells) -> (n, cells, D)
        tt = times[..., None] + lags  # (n, cells, J)
        sig = torch.sin(2 * math.pi * fr[:, None, None] * tt[..., None] + ph[:, None, None]).sum(-1)  # (n, cells, J)
        return sig @ u

    tv = v0[:, None] + recipes.cell_times(t, CLIP).float()[None]
    tav = v0[:, None] + off[:, None] + recipes.cell_times(ta, CLIP).float()[None]
    vis = feat(tv)[:, :, None, None, :] + noise * torch.randn(n, t, h, w, d, generator=g)  # (B, t, h, w, D)
    aud = feat(tav)[:, None, :, :] + noise * torch.randn(n, f, ta, d, generator=g)  # (B, f, ta, D)
    return vis, aud, tgt


def test_recipe_leaves_the_plateau_within_seconds():
    """The paper's head (official layers, depth 2, 16 selectors) with the recipe leaves ln C on an easy 3-class task.

    Measured on the shared 2-core machine: ~150-400 steps, 7-25 s (without the recipe it stays at ln 3 for the whole
    600-step budget: the token rows of paperlib/engine/plateau.py).
    """
    torch.manual_seed(0)
    C, d = 3, 32
    grid = torch.tensor([-1.0, 0.0, 1.0])
    cfg = ModelConfig(geometry=Geometry.for_classes(C, crop=48), backbone="small", d_model=d, n_head=2, depth=2,
                      n_selectors=16, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    grids = ((16, 1, 1), (1, 20))
    head = build_head(cfg, *grids)
    recipes.time_anchored_init(head, CLIP)  # the recommended recipe values
    g = torch.Generator().manual_seed(0)
    u = torch.randn(5, d, generator=g) / math.sqrt(d)
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    level = math.log(C)
    losses: list[float] = []
    t0 = time.monotonic()
    for _ in range(600):
        vis, aud, y = _easy_batch(16, g, torch.arange(C), grid, u, grids)
        parts = recipes.sparsesync_parts(head, vis, aud)
        loss = F.cross_entropy(parts["logits"], y)
        aux = recipes.sync_match_loss(parts["q"], parts["k"], 16, 16, CLIP, grid[y])
        opt.zero_grad()
        (loss + aux).backward()
        opt.step()
        losses.append(loss.item())
        if len(losses) >= 20 and sum(losses[-20:]) / 20 < 0.8 * level:
            break
    assert sum(losses[-20:]) / 20 < 0.8 * level, f"still at the plateau after {len(losses)} steps: {losses[-5:]}"
    assert time.monotonic() - t0 < 120
    # the accuracy is real synchronisation: shuffling the audio across the batch brings it back to chance
    head.eval()
    ge = torch.Generator().manual_seed(99)
    vis, aud, y = _easy_batch(600, ge, torch.arange(C), grid, u, grids)
    with torch.no_grad():
        acc = float((head(vis, aud).argmax(1) == y).float().mean())
        perm = torch.randperm(600, generator=ge)
        acc_shuf = float((head(vis, aud[perm]).argmax(1) == y).float().mean())
    assert acc > 0.6, acc
    assert acc_shuf < 0.45, acc_shuf
