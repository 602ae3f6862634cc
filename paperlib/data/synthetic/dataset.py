"""The synthetic data set on disk: the real datasets' layouts, one ground-truth sidecar per clip, the split lists and
the ``synth.json`` manifest. ``generate`` is resumable and its content does not depend on the number of workers."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import paperlib
from paperlib.core.config import to_dict
from paperlib.core.io import atomic_output, remove_stale_partials
from paperlib.data.synthetic.config import GENERATOR_VERSION, SIDECAR_FORMAT, SPARSE_CLASSES, SynthConfig, clip_id
from paperlib.data.synthetic.scenes import generate_clip


def video_path(root: str | os.PathLike, cid: str) -> Path:
    """Where the mp4 of clip ``cid`` lives under ``root`` (LRS3-like for dense ids, VGGSound-like for sparse ones)."""
    root = Path(root)
    return root / f"{cid}.mp4" if cid.startswith("pretrain/") else root / "video" / f"{cid}.mp4"


def sidecar_path(root: str | os.PathLike, cid: str) -> Path:
    return Path(root) / "sidecar" / f"{cid}.json"


def load_sidecar(root: str | os.PathLike, cid: str) -> dict[str, Any]:
    """Read the ground-truth sidecar of clip ``cid`` (an id as in the split lists; a trailing ``.mp4`` is ignored)."""
    cid = cid[:-4] if cid.endswith(".mp4") else cid
    path = sidecar_path(root, cid)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sidecar for clip {cid!r} (is {root} a paperlib synthetic dataset?)")
    with open(path) as f:
        data = json.load(f)
    if data.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: not a {SIDECAR_FORMAT} sidecar (format={data.get('format')!r})")
    return data


# ----------------------------------------------------------------------------------------------------------------------
# writing clips, lists and the manifest

def write_clip(cfg: SynthConfig, root: str | os.PathLike, index: int) -> str:
    """Generate clip ``index`` and write its mp4 and then its sidecar (the sidecar marks the clip as finished)."""
    from paperlib.core.media import write_video  # PyAV: only when writing (in-memory clips do not need it)

    clip = generate_clip(cfg, index)
    cid = clip["id"]
    options = {"threads": "1"} | ({"x264-params": cfg.x264_params} if cfg.x264_params else {})
    write_video(video_path(root, cid), clip["frames"], fps=cfg.fps, audio=clip["audio"], sample_rate=cfg.sample_rate,
                vcodec="libx264", acodec="aac", crf=cfg.crf, video_options=options)
    with atomic_output(sidecar_path(root, cid)) as tmp:  # temporary name, fsync, rename
        tmp.write_text(json.dumps(clip["sidecar"], separators=(",", ":")))
    return cid


def _is_done(cfg: SynthConfig, root: Path, index: int) -> bool:
    cid = clip_id(cfg, index)
    return sidecar_path(root, cid).is_file() and video_path(root, cid).is_file()


def _work(args: tuple[dict, str, int]) -> str:
    cfg_d, root, index = args
    cfg = SynthConfig(**cfg_d)
    try:
        return write_clip(cfg, root, index)
    except Exception as e:
        raise RuntimeError(f"synthetic clip {index} ({clip_id(cfg, index)}) under {root} failed: "
                           f"{type(e).__name__}: {e}") from e


def _splits(cfg: SynthConfig, n: int) -> dict[str, list[int]]:
    """Indices per split: dense by "video" (all clips of a talker in one split), sparse by clip; seeded by cfg.seed."""
    unit = cfg.clips_per_video if cfg.setting != "sparse" else 1
    groups = [list(range(g, min(n, g + unit))) for g in range(0, n, unit)]
    order = np.random.default_rng([cfg.seed, 1337]).permutation(len(groups))
    n_test = int(round(cfg.split_fractions[2] * len(groups)))
    n_valid = int(round(cfg.split_fractions[1] * len(groups)))
    if len(groups) >= 3:
        n_test, n_valid = max(n_test, 1), max(n_valid, 1)
    test, valid, train = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    pick = lambda gs: sorted(i for g in gs for i in groups[g])  # noqa: E731
    return {"train": pick(train), "valid": pick(valid), "test": pick(test)}


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_lists(cfg: SynthConfig, root: str | os.PathLike, n: int) -> dict[str, list[str]]:
    """Write the split lists / annotation CSVs of the layout; returns {split: [ids]}."""
    root = Path(root)
    splits = {k: [clip_id(cfg, i) for i in v] for k, v in _splits(cfg, n).items()}
    if cfg.setting == "sparse":
        rows = []
        for split, ids in splits.items():
            for i in _splits(cfg, n)[split]:
                cid = clip_id(cfg, i)
                ytid, start_ms, _ = cid.rsplit("_", 2)
                rows.append((i, f"{ytid},{int(start_ms) // 1000},{SPARSE_CLASSES[i % len(SPARSE_CLASSES)]},"
                                f"{'test' if split == 'test' else 'train'}"))
        _write_text(root / "vggsound_sparse.csv", "".join(r + "\n" for _, r in sorted(rows)))
        _write_text(root / "picked_sparse_classes.csv", "class\tis_sparse\n" + "".join(f"{c}\ty\n" for c in
                                                                                       sorted(SPARSE_CLASSES)))
        for split, ids in splits.items():
            _write_text(root / f"vggsound_sparse_{split}.txt", "".join(i + "\n" for i in ids))
    else:
        for split, ids in splits.items():
            _write_text(root / f"lrs3_{split}.txt", "".join(i + "\n" for i in ids))
    return splits


def _versions() -> dict[str, str]:
    import av

    v = {"paperlib": paperlib.__version__, "numpy": np.__version__, "av": av.__version__,
         "python": sys.version.split()[0]}
    try:
        v["ffmpeg_libavcodec"] = ".".join(str(x) for x in av.library_versions["libavcodec"])
    except Exception:  # noqa: BLE001 - provenance only
        pass
    return v


def generate(cfg: SynthConfig, root: str | os.PathLike, clips: int, workers: int = 1, progress: bool = True) -> Path:
    """Generate ``clips`` clips of ``cfg`` under ``root`` (resumable: finished clips are skipped), then the split lists
    and ``synth.json``. Workers run in a spawn pool; the content does not depend on their number or order."""
    from tqdm import tqdm

    cfg.validate()
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(root)  # hidden temporaries of a killed earlier run (never files under final names)
    manifest_path = root / "synth.json"
    keys = ("setting", "size", "seed", "duration_sec", "fps", "sample_rate", "clips_per_video", "event_count_probs",
            "min_event_gap_sec", "crf", "x264_params")
    if manifest_path.is_file():
        old = to_dict(SynthConfig()) | json.loads(manifest_path.read_text()).get("config", {})  # fields added later
        new = to_dict(cfg)
        diff = {k: (old.get(k), new[k]) for k in keys if json.dumps(old.get(k)) != json.dumps(new[k])}
        if diff:
            raise ValueError(f"{manifest_path}: {root} holds a different synthetic dataset ({diff}); "
                             f"use another folder")
    todo = [i for i in range(clips) if not _is_done(cfg, root, i)]
    t0 = time.perf_counter()
    bar = tqdm(total=clips, initial=clips - len(todo), desc=f"synth {cfg.setting} {cfg.size}px", unit="clip",
               disable=not progress)
    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            _work((to_dict(cfg), str(root), i))
            bar.update(1)
    else:
        import multiprocessing as mp

        cfg_d = to_dict(cfg)
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_work, [(cfg_d, str(root), i) for i in todo]):
                bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - t0
    write_lists(cfg, root, clips)
    run = {"generated": len(todo), "seconds": round(elapsed, 2), "workers": workers,
           "clips_per_sec": round(len(todo) / elapsed, 3) if todo and elapsed > 0 else None}
    runs = json.loads(manifest_path.read_text()).get("runs", []) if manifest_path.is_file() else []
    manifest = {"config": to_dict(cfg), "clips": clips, "classes": list(SPARSE_CLASSES) if cfg.setting == "sparse"
                else ["speech"], "generator_version": GENERATOR_VERSION, "versions": _versions(),
                "last_run": run, "runs": runs + [run]}  # every (resumed) run, in order
    _write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return root
