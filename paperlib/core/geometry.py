"""The geometry of a clip as model and data both see it: window length, frame rate, sample rate, crop, spectrogram,
and the offset classes with their grid.

Paper Sec. 3: 5-s windows of 25 fps video (224 px crops) and 16 kHz audio (log-spectrogram, STFT 512 / hop 128),
offsets classified on a grid of C classes over [-max_off, +max_off]: 21 classes over +-2 s (0.2-s steps), or the
3-class variant -1, 0, +1 s. One object holds these numbers, shared by the model (token grids, classifier width) and
the data pipeline (windows, targets), so the two cannot disagree.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def official_max_offset(num_classes: int) -> float:
    """The offset range the authors use for a class count: +-1 s for the 3-class grid, +-2 s otherwise."""
    return 1.0 if num_classes == 3 else 2.0


@dataclasses.dataclass
class Geometry:
    num_classes: int = 21  # C: offset classes on the grid (21: -2..+2 s in 0.2-s steps; 3: -1, 0, +1 s)
    max_off_sec: float = 2.0  # s: the grid spans [-max_off_sec, +max_off_sec]
    clip_sec: float = 5.0  # s: input window length (Tab. 4: 2-7 s)
    fps: float = 25.0  # video frames per second
    sample_rate: int = 16000  # Hz: audio sample rate
    crop: int = 224  # px: square spatial crop (H = W)
    n_fft: int = 512  # samples: STFT size (F = n_fft // 2 + 1 = 257 bins)
    hop: int = 128  # samples: STFT hop (centred STFT: Ta = samples // hop + 1 = 626)

    @classmethod
    def for_classes(cls, num_classes: int, **fields) -> "Geometry":
        """A geometry with the official offset range of ``num_classes`` (see :func:`official_max_offset`)."""
        return cls(num_classes=num_classes, max_off_sec=official_max_offset(num_classes), **fields)

    def validate(self) -> "Geometry":
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.num_classes == 3 and self.max_off_sec != 1.0:
            raise ValueError(f"the 3-class setting uses max_off_sec=1.0 (official), got {self.max_off_sec}")
        for name in ("crop", "n_fft", "hop", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_sec <= 0 or self.fps <= 0 or self.max_off_sec <= 0:
            raise ValueError(f"clip_sec, fps and max_off_sec must be > 0, got {self.clip_sec}, {self.fps}, "
                             f"{self.max_off_sec}")
        return self

    @property
    def frames(self) -> int:
        """Video frames per window (125 at 5 s, 25 fps)."""
        return int(round(self.clip_sec * self.fps))

    @property
    def samples(self) -> int:
        """Audio samples per window (80,000 at 5 s, 16 kHz)."""
        return int(round(self.clip_sec * self.sample_rate))

    @property
    def spec_shape(self) -> tuple[int, int]:
        """(frequency bins, time frames) of the centred log-spectrogram of a window."""
        return self.n_fft // 2 + 1, 1 + self.samples // self.hop

    @property
    def step_sec(self) -> float:
        """Distance between neighbouring offset classes (0.2 s for 21 classes over +-2 s)."""
        return 2 * self.max_off_sec / (self.num_classes - 1)

    def grid(self) -> np.ndarray:
        """The offset of each class, ``linspace(-max_off, max_off, C)`` in seconds (float64)."""
        return class_grid(self.num_classes, self.max_off_sec)

    def offset_to_target(self, offset_sec: float) -> int:
        return offset_to_target(offset_sec, self.num_classes, self.max_off_sec)


def class_grid(num_classes: int, max_off_sec: float) -> np.ndarray:
    """The offset grid ``linspace(-max_off, max_off, C)`` in seconds (float64)."""
    return np.linspace(-max_off_sec, max_off_sec, num_classes)


def offset_to_target(offset_sec: float, num_classes: int, max_off_sec: float) -> int:
    """Index of the grid value nearest to ``offset_sec`` (offsets beyond the grid map to its ends)."""
    return int(np.argmin(np.abs(class_grid(num_classes, max_off_sec) - offset_sec)))
