"""Configuration of the codec-leakage study: the start-time classifier and its training (``ProbeConfig``), Table 1's
data generation (``Table1Config``), the size profiles and probe budgets, and Table 1's rows with the paper's numbers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from paperlib.core.config import merge

VERDICT_LEAK = "artefacts leak start time"
VERDICT_NONE = "no leakage detected at this budget"

AUDIO_EXTS = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"}
VIDEO_EXTS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"}

# FFmpeg's CLI default for mpeg4 is 200 kb/s; we keep its bits per pixel at this reference pixel rate (see docstring).
MPEG4_REFERENCE_BITS_PER_PIXEL = 200_000 / (1280 * 720 * 25)


# ---------------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class ProbeConfig:
    """The start-time classifier and its training (one Table 1 row, or one probe run)."""

    modality: str = "audio"  # audio | video
    classifier: str = "position"  # position (CPU-learnable, deviation) | resnet18 (the paper's)
    clip_seconds: float = 10.0  # clip length L (s); trims of L/2 start on the grid within [0, L/2)
    step_seconds: float = 0.1  # start grid (s): L/2/step classes (50 for L = 10 s)
    fps: float = 10.0  # video frame rate the classifier sees (paper: 10 fps)
    video_size: int = 32  # side (px) of the frames fed to the classifier
    video_grey: bool = True  # grey frames (position classifier) or RGB (paper)
    audio_window_seconds: float = 1.0  # seconds of the trim fed to the classifier (paper: the whole 5-s trim)
    audio_hop_seconds: float = 0.0035  # target STFT hop (s); the hop used divides the grid step in samples
    audio_max_bands: int = 64  # frequency bands kept (adjacent STFT bins' power averaged)
    log_eps: float = 1e-10  # log(power + eps): tiny, the AAC leak lives in near-zero energy
    width: int = 16  # classifier channels
    epochs: int = 30
    trims_per_clip: int = 1  # random trims per training clip per epoch
    batch_size: int = 32
    lr: float = 1e-3  # AdamW
    weight_decay: float = 1e-4
    test_fraction: float = 0.2  # held-out clips
    test_trims_per_clip: int = 5  # fixed start classes per held-out clip (balanced over classes)
    alpha: float = 0.01  # level of the one-sided binomial test of Acc@1 against chance
    period: int = 12  # modulo indicator period in classes (GOP 12 at 10 fps)
    seed: int = 0
    num_threads: int = 1  # torch threads (1 is fastest on a shared 2-core machine); 0 leaves torch's default
    device: str = "auto"  # auto (cuda if available) | cpu | cuda


@dataclass
class Table1Config:
    """Data generation for Table 1 plus the classifier per modality."""

    profile: str = "mini"
    render_size: int = 64  # side (px) of the rendered footage
    video_clips: int = 200  # clips per video row (the three rows share the rendered sources)
    audio_clips: int = 300  # clips per audio rate
    audio_amplitude: float = 0.25  # std of the white noise (clipped to [-1, 1])
    reference_bits_per_pixel: float = MPEG4_REFERENCE_BITS_PER_PIXEL  # mpeg4 bit rate = this x pixel rate
    rows: tuple[str, ...] = ("mpeg4", "h264", "prores", "aac44100", "aac22050", "aac16000", "pcm22050")
    seed: int = 0
    audio: ProbeConfig = field(default_factory=lambda: ProbeConfig(modality="audio"))
    video: ProbeConfig = field(default_factory=lambda: ProbeConfig(modality="video"))


# Presets are dicts of differences from the defaults above.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "render_size": 32, "video_clips": 24, "audio_clips": 24, "rows": ("mpeg4", "aac44100"),
        "audio": {"epochs": 2, "clip_seconds": 2.0, "audio_window_seconds": 0.25, "width": 8},
        "video": {"epochs": 2, "clip_seconds": 4.0, "video_size": 16, "width": 8},
    },
    "mini": {  # sized for ~15 min on a shared 2-core CPU (the 22.05-kHz AAC row needs ~1000 clips)
        "video_clips": 200, "audio_clips": 1000,
        "audio": {"epochs": 30, "trims_per_clip": 2},
        "video": {"epochs": 20, "trims_per_clip": 2},
    },
    "full": {  # twice mini's clips (smaller s.e. of every row), same classifiers; ~15-20 min on a 2-core CPU
        "video_clips": 400, "audio_clips": 2000,
        "audio": {"epochs": 30, "trims_per_clip": 2},
        "video": {"epochs": 20, "trims_per_clip": 2},
    },
    "paper": {
        "render_size": 128, "video_clips": 2000, "audio_clips": 2000,
        "audio": {"classifier": "resnet18", "audio_window_seconds": 5.0, "audio_hop_seconds": 0.01,
                  "audio_max_bands": 128, "epochs": 100, "lr": 3e-4, "batch_size": 64, "num_threads": 0},
        "video": {"classifier": "resnet18", "video_size": 112, "video_grey": False, "epochs": 100, "lr": 3e-4,
                  "batch_size": 32, "num_threads": 0},
    },
}

PROBE_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 3, "width": 8},
    "mini": {"epochs": 30, "trims_per_clip": 2},
    "paper": PROFILES["paper"]["audio"] | {"video_size": 112, "video_grey": False},
}


@dataclass(frozen=True)
class RowSpec:
    label: str
    modality: str
    codec: str  # encoder (video) / audio codec
    sample_rate: int = 0  # audio rows


ROWS: dict[str, RowSpec] = {
    "mpeg4": RowSpec("MPEG-4 Part 2 (mpeg4)", "video", "mpeg4"),
    "h264": RowSpec("MPEG-4 Part 10 (H.264)", "video", "libx264"),
    "prores": RowSpec("ProRes", "video", "prores_ks"),
    "aac44100": RowSpec("AAC @ 44100Hz", "audio", "aac", 44100),
    "aac22050": RowSpec("AAC @ 22050Hz", "audio", "aac", 22050),
    "aac16000": RowSpec("AAC @ 16000Hz", "audio", "aac", 16000),
    "pcm22050": RowSpec("Lossless @ 22050Hz", "audio", "pcm_s16le", 22050),
}


def table1_config(profile: str = "mini", overrides: dict[str, Any] | None = None) -> Table1Config:
    """Resolve a profile (smoke | mini | paper) plus optional differences into a ``Table1Config``."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    cfg = merge(Table1Config(profile=profile), PROFILES[profile])
    cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, modality="audio"),
                              video=dataclasses.replace(cfg.video, modality="video"))
    return merge(cfg, overrides or {})


def probe_config(modality: str, budget: str = "mini", overrides: dict[str, Any] | None = None) -> ProbeConfig:
    if modality not in ("audio", "video"):
        raise ValueError(f"modality must be audio or video, got {modality!r}")
    if budget not in PROBE_BUDGETS:
        raise KeyError(f"unknown budget {budget!r}; choose from {sorted(PROBE_BUDGETS)}")
    base = dict(PROBE_BUDGETS[budget])
    if modality == "audio":
        base = {k: v for k, v in base.items() if not k.startswith("video_")}
    return merge(ProbeConfig(modality=modality), base | (overrides or {}))
