"""Configuration of the synthetic benchmark: its settings and event classes, ``SynthConfig`` and the clip ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SETTINGS = ("dense-crop", "dense-wide", "sparse")
SPARSE_CLASSES = ("bounce", "hammer", "chop", "clap", "bark", "door", "crack", "strike")
# event_count_probs of the training clips of the plateau recipe's sparse step (README "What to expect ..."): 3-5 events
# per 10-s clip instead of 0-3, so most 5-s windows hold one or two cues; the test set keeps the defaults.
DENSE_EVENT_PROBS = (0.0, 0.0, 0.0, 0.3, 0.4, 0.3)
GENERATOR_VERSION = "1"
SIDECAR_FORMAT = "paperlib-synthetic-sidecar/1"


@dataclass
class SynthConfig:
    setting: str = "dense-crop"  # one of SETTINGS
    size: int = 64  # frame side (px); square, even; 256 = paper geometry
    seed: int = 0  # dataset seed; clip i uses default_rng([seed, i])
    duration_sec: float = 10.0  # clip length (s)
    fps: int = 25  # video frame rate (frames/s)
    sample_rate: int = 16000  # audio rate (Hz)
    clips_per_video: int = 4  # dense: clips per synthetic talker ("video" id, the unit of the split)
    event_count_probs: tuple[float, ...] = (0.1, 0.3, 0.35, 0.25)  # sparse: P(0, 1, 2, 3 events per clip)
    min_event_gap_sec: float = 1.2  # sparse: minimum time between two events (their motions last [-0.6, +0.6] s)
    crf: int = 10  # libx264 constant rate factor (official re-encoding uses 10)
    x264_params: str = ""  # extra libx264 options, e.g. "keyint=1" (intra-only: no GOP/B-frame structure at all)
    split_fractions: tuple[float, ...] = (0.8, 0.1, 0.1)  # train / valid / test

    def validate(self) -> "SynthConfig":
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number >= 16 (yuv420p), got {self.size}")
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"split_fractions must be 3 numbers summing to 1, got {self.split_fractions}")
        p = np.asarray(self.event_count_probs, float)
        if p.ndim != 1 or len(p) < 1 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"event_count_probs must be probabilities summing to 1, got {self.event_count_probs}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (numpy SeedSequence entropy), got {self.seed}")
        if self.clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {self.clips_per_video}")
        return self


def clip_id(cfg: SynthConfig, index: int) -> str:
    """The dataset id of clip ``index``: ``pretrain/synVVVVV/CCCCC`` (dense), ``synIIIII_<startms>_<endms>``."""
    if cfg.setting == "sparse":
        start = int(np.random.default_rng([cfg.seed, index, 7]).integers(0, 30))  # a VGGSound-like start second
        return f"syn{index:05d}_{start * 1000}_{(start + int(round(cfg.duration_sec))) * 1000}"
    v, c = divmod(index, cfg.clips_per_video)
    return f"pretrain/syn{v:05d}/{c:05d}"
