"""The data of the training campaign's profiles: where each setting's data lies, what it *is*, and the synthetic sets
generated on demand.

- The synthetic profiles (smoke, mini, full; :data:`SYNTH`) generate each setting's set once under
  ``<runs_root>/data/<profile>/<setting>/`` (:func:`ensure_data`), at mini and full with a separate test set of other
  talkers and events (``<setting>-test``); the ``paper`` profile reads prepared real data sets under ``data_root``
  (:data:`PAPER_DATA_DIRS`).
- :func:`data_identity` / :func:`test_identity` say what a setting's data is, independently of where it lies (the
  synthetic recipe, or the real folder), for the campaign hash (:mod:`paperlib.paper.run_config`).

The profiles themselves (:mod:`paperlib.paper.profiles`) reference their :class:`SynthData` here; this module knows
nothing of the paper layer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from paperlib.core.config import config_hash, to_dict
from paperlib.core.io import write_json_atomic
from paperlib.core.paths import runs_dir
from paperlib.data import synthetic
from paperlib.data.synthetic import DENSE_EVENT_PROBS, SynthConfig


@dataclass(frozen=True)
class SynthData:
    """The synthetic data of a profile: its training sets, their separate test sets and the "general" set.

    dense-crop/dense-wide share seed 0 (same talkers); the test sets use :data:`TEST_SEED` (talkers and events no
    training clip has)."""

    size: int  # frame side (px)
    clips: Mapping[str, int]  # training clips per setting (dense-crop, dense-wide, sparse)
    clips_per_video: int  # clips per talker video (dense settings)
    # clips of each setting's separate test set (0 = test on the training set's own test split). Test clips are cheap
    # to make and to score, so mini and full test on 400 distinct items per setting: two standard errors of a
    # difference near 50 % are then ~7 points instead of ~20 at 48 items.
    test: int
    # train / valid / test fractions of the training sets: with a separate test set (mini, full) their own test split
    # keeps only one talker or clip (the split rule keeps >= 1 per split); smoke tests on its own 20 %
    split: tuple[float, float, float]
    # The sparse step of the recipe trains on sparse clips with 3-5 events per 10-s clip (synthetic.DENSE_EVENT_PROBS)
    # instead of the test generator's 0-3, so most windows hold a cue to learn from; it is tested on the standard
    # sparse generator. mini and full train every sparse and general run on such clips; smoke keeps the defaults.
    dense_event_training: bool
    # "general": (setting, seed, clips) of the parts linked into one VGGSound-layout set ("larger and more varied"
    # than the sparse training set: more clips, and talker clips besides the sparse classes).
    general_parts: tuple[tuple[str, int, int], ...]


# Synthetic data per profile (the profiles of paperlib.paper.profiles that train on synthetic stand-ins).
SYNTH: dict[str, SynthData] = {
    "smoke": SynthData(size=32, clips={"dense-crop": 12, "dense-wide": 12, "sparse": 12}, clips_per_video=1, test=0,
                       split=(0.7, 0.1, 0.2), dense_event_training=False,
                       general_parts=(("sparse", 1, 12), ("dense-wide", 1, 8))),
    "mini": SynthData(size=64, clips={"dense-crop": 240, "dense-wide": 240, "sparse": 240}, clips_per_video=4,
                      test=400, split=(0.85, 0.15, 0.0), dense_event_training=True,
                      general_parts=(("sparse", 1, 200), ("dense-wide", 1, 120))),
    "full": SynthData(size=64, clips={"dense-crop": 480, "dense-wide": 480, "sparse": 600}, clips_per_video=4,
                      test=400, split=(0.85, 0.15, 0.0), dense_event_training=True,
                      general_parts=(("sparse", 1, 800), ("dense-wide", 1, 400))),
}
TEST_SPLIT = (0.0, 0.0, 1.0)  # a test set is all test
TEST_SEED = 1000
# paper: sub-folders of data_root (prepared with `python -m paperlib prepare`, layouts of paperlib.data.datasets).
PAPER_DATA_DIRS = {"dense-crop": "lrs3", "dense-wide": "lrs3_no_face_crop", "sparse": "vggsound_sparse",
                   "general": "vggsound"}


def runs_root_path(runs_root: str | os.PathLike | None) -> Path:
    """The campaign's root folder: ``runs_root``, else the repository's ``runs/``."""
    return Path(runs_root).resolve() if runs_root is not None else runs_dir()


def synth_config(profile: str, setting: str, seed: int = 0, *, test: bool = False) -> SynthConfig:
    """The SynthConfig of a synthetic setting at ``profile`` (smoke, mini, full): its training set (sparse clips
    with dense events where ``dense_event_training``), or with ``test`` its separate test set (the standard
    generator, ``TEST_SEED``, all test)."""
    p = SYNTH[profile]
    split = TEST_SPLIT if test else p.split
    cfg = SynthConfig(setting=setting, size=p.size, seed=TEST_SEED if test else seed,
                      clips_per_video=p.clips_per_video, split_fractions=split)
    if setting == "sparse" and not test and p.dense_event_training:
        cfg = dataclasses.replace(cfg, event_count_probs=DENSE_EVENT_PROBS)
    return cfg.validate()


def has_test_set(profile: str) -> bool:
    """Does ``profile`` test on separate synthetic test sets (else on each training set's own test split)?"""
    return profile in SYNTH and SYNTH[profile].test > 0


def data_identity(profile: str, setting: str, data_root: str | os.PathLike | None = None) -> str:
    """What the data of a setting *is* (for the campaign hash): the synthetic recipe, or the real folder's path."""
    if profile == "paper":
        return f"paper:{_paper_root(setting, data_root)}"
    if setting == "general":
        parts = [(to_dict(synth_config(profile, s, seed)), n) for s, seed, n in SYNTH[profile].general_parts]
        return f"synthetic-general:{config_hash({'parts': parts})}"
    cfg = synth_config(profile, setting)
    return f"synthetic:{config_hash({'config': to_dict(cfg), 'clips': SYNTH[profile].clips[setting]})}"


def test_identity(profile: str, setting: str, data_root: str | os.PathLike | None = None) -> str:
    """What the test data of a setting *is*: the separate test set's recipe, or the training data's identity (its
    own test split)."""
    if not has_test_set(profile):
        return data_identity(profile, setting, data_root)
    cfg = synth_config(profile, setting, test=True)
    return f"synthetic-test:{config_hash({'config': to_dict(cfg), 'clips': SYNTH[profile].test})}"


def test_dir(profile: str, setting: str, runs_root: str | os.PathLike | None = None,
             data_root: str | os.PathLike | None = None) -> Path:
    """The data root a setting is tested on (not created): its separate test set, or its training data."""
    if not has_test_set(profile):
        return data_dir(profile, setting, runs_root, data_root)
    return runs_root_path(runs_root) / "data" / profile / f"{setting}-test"


def _paper_root(setting: str, data_root: str | os.PathLike | None) -> Path:
    if not data_root:
        raise ValueError("the paper profile needs data_root: a folder holding " +
                         ", ".join(f"{v}/ ({k})" for k, v in PAPER_DATA_DIRS.items()))
    return Path(data_root).resolve() / PAPER_DATA_DIRS[setting]


def data_dir(profile: str, setting: str, runs_root: str | os.PathLike | None = None,
             data_root: str | os.PathLike | None = None) -> Path:
    """The data root of a setting (not created)."""
    if profile == "paper":
        return _paper_root(setting, data_root)
    return runs_root_path(runs_root) / "data" / profile / setting


def ensure_data(profile: str, settings: Iterable[str], runs_root: str | os.PathLike | None = None,
                progress: bool = True, workers: int = 1) -> dict[str, Path]:
    """Generate the synthetic sets of ``settings`` (smoke, mini, full) once, with their separate test sets where
    the profile has them (``{setting}-test`` keys of the result); checks their ``synth.json``."""
    if profile not in SYNTH:
        raise ValueError(f"profile {profile!r} uses real data (data_root), not synthetic sets; use {list(SYNTH)}")
    out: dict[str, Path] = {}
    for setting in dict.fromkeys(settings):
        root = data_dir(profile, setting, runs_root)
        if setting == "general":
            out[setting] = _ensure_general(profile, runs_root, progress, workers)
            continue
        n = SYNTH[profile].clips[setting]
        _generate_checked(synth_config(profile, setting), root, n, progress, workers)
        out[setting] = root
        if has_test_set(profile):
            troot = test_dir(profile, setting, runs_root)
            _generate_checked(synth_config(profile, setting, test=True), troot, SYNTH[profile].test, progress,
                              workers)
            out[f"{setting}-test"] = troot
    return out


def _generate_checked(cfg: SynthConfig, root: Path, clips: int, progress: bool, workers: int) -> Path:
    manifest = root / "synth.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("clips") == clips and m.get("config") == to_dict(cfg) and _clips_done(cfg, root, clips):
            return root
    synthetic.generate(cfg, root, clips, workers=workers, progress=progress)
    m = json.loads(manifest.read_text())
    if m.get("config") != to_dict(cfg) or m.get("clips") != clips:
        raise RuntimeError(f"{manifest}: does not describe the requested set ({to_dict(cfg)}, {clips} clips)")
    return root


def _clips_done(cfg: SynthConfig, root: Path, clips: int) -> bool:
    for i in (0, clips - 1):
        cid = synthetic.clip_id(cfg, i)
        if not (synthetic.video_path(root, cid).is_file() and synthetic.sidecar_path(root, cid).is_file()):
            return False
    return True


def _ensure_general(profile: str, runs_root: str | os.PathLike | None, progress: bool, workers: int) -> Path:
    """The "general" set: a VGGSound-layout folder (``vggsound.csv``, ``vggsound_{split}.txt``, ``video/``,
    ``sidecar/``) of relative links to the clips of ``general_parts`` (generated under ``general-parts/``)."""
    root = data_dir(profile, "general", runs_root)
    ident = data_identity(profile, "general")
    done = root / "general.json"
    if done.is_file() and json.loads(done.read_text()).get("identity") == ident:
        return root
    if root.exists():
        shutil.rmtree(root)  # an unfinished or different build: it only holds links and lists
    parts_root = root.parent / "general-parts"
    tmp = root.with_name(f".{root.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "video").mkdir(parents=True)
    (tmp / "sidecar").mkdir()
    rows, lists = [], {"train": [], "valid": [], "test": []}
    for setting, seed, n in SYNTH[profile].general_parts:
        cfg = synth_config(profile, setting, seed)
        src = _generate_checked(cfg, parts_root / f"{setting}-seed{seed}", n, progress, workers)
        splits = synthetic.write_lists(cfg, src, n)
        for split, ids in splits.items():
            for cid in ids:
                if setting == "sparse":
                    ytid, start_ms, _ = cid.rsplit("_", 2)
                    start = int(start_ms) // 1000
                    new_ytid = f"g{ytid}"
                    label = synthetic.load_sidecar(src, cid)["label"]
                else:
                    v, c = cid.split("/")[1:]
                    start, new_ytid, label = 0, f"gdw{v[3:]}c{c}", "speech"
                new_id = f"{new_ytid}_{start * 1000}_{(start + 10) * 1000}"
                os.symlink(os.path.relpath(synthetic.video_path(src, cid), tmp / "video"),
                           tmp / "video" / f"{new_id}.mp4")
                os.symlink(os.path.relpath(synthetic.sidecar_path(src, cid), tmp / "sidecar"),
                           tmp / "sidecar" / f"{new_id}.json")
                rows.append(f"{new_ytid},{start},{label},{'test' if split == 'test' else 'train'}")
                lists[split].append(new_id)
    (tmp / "vggsound.csv").write_text("".join(r + "\n" for r in sorted(rows)))
    for split, ids in lists.items():
        (tmp / f"vggsound_{split}.txt").write_text("".join(i + "\n" for i in sorted(ids)))
    parts = [list(p) for p in SYNTH[profile].general_parts]
    write_json_atomic(tmp / "general.json", {"identity": ident, "parts": parts,
                                             "clips": {k: len(v) for k, v in lists.items()}})
    os.replace(tmp, root)
    return root

