"""The SparseSync train and test transform sequences, acting on one key of a sample dict each.

Paper Sec. 3 ("Training procedure") and Sec. 5; the train and test sequences of the authors' code (v-iashin/SparseSync).
A sample enters with ``video`` uint8 (T, 3, H, W) (the temporal window already cut by the decoder) and ``audio`` float32
(N,) in [-1, 1]; it leaves with ``video`` float32 (T, 3, crop, crop) ImageNet-normalised and ``audio`` float32
(1, F, Ta) standardised log-spectrogram, F = n_fft // 2 + 1 = 257, Ta = 1 + N // hop = 626 at the paper geometry.

Order, as the official ``transform_sequence_train``: spatial crop (random 224, or with ``sometimes_upscale_p`` a random
192 crop resized to 224; one crop for all frames) -> colour jitter (SimCLR s=1: ColorJitter(0.8, 0.8, 0.8, 0.2) with
p_color_jitter, then RandomGrayscale(p_gray_scale); one draw for the whole clip) -> horizontal flip (p_horizontal_flip)
-> /255 and ImageNet mean/std -> audio augmentations, each with p_audio_aug (reverb, gain x2, +1000 cents pitch,
100 Hz low-pass, + 0.01 N(0, 1)) -> spectrogram (n_fft 512, hop 128, Hann, power 2, centred, reflect padding) ->
log(x + 1e-6) -> frequency mask (64) and time mask (200), each with p_audio_aug -> per-frequency standardisation over
time with the unbiased std (+1e-6) -> channel dim. The test sequence is: centre crop, normalisation, spectrogram, log,
standardisation (no randomness).

Deviations from the official code (sox is not used; all substitutes are torch/torchaudio-native):
- Reverb: sox ``reverb -w`` (freeverb, reverberance 50 %, HF damping 50 %) is replaced by convolution with a fixed,
  seeded synthetic room impulse response (exponentially decaying noise, RT60 0.5 s, one-pole HF damping, unit energy),
  wet signal only.
- Pitch shift: sox ``pitch 1000`` is replaced by a phase-vocoder time stretch (n_fft 512, hop 128) followed by a
  windowed-sinc resampling by a rational approximation of 2^(10/12) (57/32, 0.5 cents flat); the length is kept.
- Randomness comes from a ``torch.Generator`` given per sample (seeded by the dataset from seed, epoch and index), not
  from the global ``random``/torch state, so items are reproducible whatever the number of DataLoader workers.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
import torchvision.transforms.v2.functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Sample = dict[str, Any]


def _rand(gen: torch.Generator) -> float:
    return float(torch.rand((), generator=gen))


def _randint(lo: int, hi: int, gen: torch.Generator) -> int:
    """Uniform integer in [lo, hi] (inclusive, as ``random.randint``)."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


def _uniform(lo: float, hi: float, gen: torch.Generator) -> float:
    return lo + (hi - lo) * _rand(gen)


# --------------------------------------------------------------------------------------------------------------------
# RGB (video: (T, 3, H, W))
# --------------------------------------------------------------------------------------------------------------------

def center_crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the official centre crop: ``int(round((h - size) / 2.))`` (Python rounding, half to even)."""
    if height < size or width < size:
        raise ValueError(f"frames of {width}x{height} px are smaller than the {size} px crop")
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


class RGBSpatialCrop:
    """One spatial crop for all frames: random (train) or centre (test); optionally sometimes a smaller crop upscaled.

    Args:
        size: output side (224).
        random: random position (train) or centre (test).
        sometimes_upscale_p: probability of cropping ``upscale_from`` px (192) and resizing it to ``size`` (bilinear).
    """

    def __init__(self, size: int, random: bool, sometimes_upscale_p: float = 0.0, upscale_from: int = 192):
        self.size, self.random, self.p_up, self.upscale_from = size, random, sometimes_upscale_p, upscale_from

    def __call__(self, sample: Sample, gen: torch.Generator) -> Sample:
        video = sample["video"]  # (T, 3, H, W)
        h, w = video.shape[-2:]
        upscale = self.p_up > 0 and _rand(gen) < self.p_up
        side = self.upscale_from if upscale else self.size
        if h < side or w < side:
            raise ValueError(f"frames of {w}x{h} px are smaller than the {side} px crop")
        if self.random:
            top, left = _randint(0, h - side, gen), _randint(0, w - side, gen)
        else:
            top, left = center_crop_box(h, w, side)
        video = video[..., top:top + side, left:left + side]
        if upscale:
            video = TF.resize(video, [self.size, self.size], antialias=True)
        sample["video"] = video
        return sample


class RandomColorDistortion:
    """SimCLR colour distortion (s=1) with the same parameters for every frame of the clip (uint8 in, uint8 out).

    ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2) applied with probability ``p_color_jitter``
    (the four adjustments in a random order, as torchvision), then greyscale with probability ``p_gray_scale``.
    """

    def __init__(self, p_color_jitter: float, p_gray_scale: float, strength: float = 1.0):
        self.p_jitter, self.p_gray = p_color_jitter, p_gray_scale
        self.b = self.c = self.s = 0.8 * strength
        self.h = 0.2 * strength

    def __call__(self, sample: Sample, gen: torch.Generator) -> Sample:
        video = sample["video"]
        if self.p_jitter > 0 and _rand(gen) < self.p_jitter:
            order = torch.randperm(4, generator=gen).tolist()
            b = _uniform(max(0.0, 1 - self.b), 1 + self.b, gen)
            c = _uniform(max(0.0, 1 - self.c), 1 + self.c, gen)
            s = _uniform(max(0.0, 1 - self.s), 1 + self.s, gen)
            hue = _uniform(-self.h, self.h, gen)
            for op in order:
                if op == 0:
                    video = TF.adjust_brightness(video, b)
                elif op == 1:
                    video = TF.adjust_contrast(video, c)
                elif op == 2:
                    video = TF.adjust_saturation(video, s)
                else:
                    video = TF.adjust_hue(video, hue)
        if self.p_gray > 0 and _rand(gen) < self.p_gray:
            video = TF.rgb_to_grayscale(video, num_output_channels=3)
        sample["video"] = video
        return sample


class RandomHorizontalFlip:
    def __init__(self, p: float):
        self.p = p

    def __call__(self, sample: Sample, gen: torch.Generator) -> Sample:
        if self.p > 0 and _rand(gen) < self.p:
            sample["video"] = sample["video"].flip(-1)
        return sample


class RGBNormalize:
    """uint8 -> (x / 255 - mean) / std per channel (ImageNet), as one multiply and one subtract in float32.

    ``x * (1 / (255 std)) - mean / std`` equals the official ``(x / 255 - mean) / std`` to float32 rounding (a few ulp,
    < 1e-6); two passes over the clip instead of three. The output is contiguous (T, 3, H, W).
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        mean_t = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
        self._scale = (1.0 / (255.0 * std_t)).float().numpy()
        self._shift = (mean_t / std_t).float().numpy()

    def __call__(self, sample: Sample, gen: torch.Generator | None = None) -> Sample:
        # numpy's uint8 -> float32 multiply is ~3x faster than torch's single-threaded cast here (bench/data_pipeline)
        src = sample["video"].numpy()  # (T, 3, H, W) uint8, possibly a strided crop view
        out = np.empty(src.shape, dtype=np.float32)
        np.multiply(src, self._scale, out=out)
        np.subtract(out, self._shift, out=out)
        sample["video"] = torch.from_numpy(out)
        return sample


# --------------------------------------------------------------------------------------------------------------------
# Audio waveform (audio: (N,))
# --------------------------------------------------------------------------------------------------------------------

def synthetic_room_ir(sample_rate: int, rt60: float = 0.5, damping: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A fixed room impulse response: exponentially decaying noise (-60 dB at ``rt60``), one-pole HF damping."""
    gen = torch.Generator().manual_seed(seed)
    n = int(rt60 * sample_rate)
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    ir = torch.randn(n, generator=gen) * torch.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    ir = AF.lfilter(ir[None], torch.tensor([[1.0, -damping]]), torch.tensor([[1.0 - damping, 0.0]]), clamp=False)[0]
    return ir / ir.norm()


def pitch_shift(wave: torch.Tensor, sample_rate: int, cents: float, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Shift the pitch by ``cents`` keeping the length: phase-vocoder stretch, then a rational-ratio resampling."""
    ratio = Fraction(2 ** (cents / 1200)).limit_denominator(64)  # 1000 cents -> 57/32
    n = wave.shape[-1]
    window = torch.hann_window(n_fft)
    spec = torch.stft(wave, n_fft, hop, window=window, return_complex=True)  # (F, frames)
    phase_advance = torch.linspace(0, math.pi * hop, spec.shape[-2])[..., None]
    stretched = AF.phase_vocoder(spec, 1.0 / float(ratio), phase_advance)
    longer = torch.istft(stretched, n_fft, hop, window=window, length=int(round(n * float(ratio))))
    out = AF.resample(longer, ratio.numerator, ratio.denominator)
    if out.shape[-1] < n:
        out = F.pad(out, (0, n - out.shape[-1]))
    return out[..., :n]


class AudioAugment:
    """The official waveform augmentations, each applied independently with probability ``p``, in this order:
    reverb (wet only), gain x2 with clamping to [-1, 1], +1000 cents pitch, 100 Hz low-pass biquad (Q 0.707),
    additive Gaussian noise 0.01 N(0, 1). Substitutes for sox effects: see the module docstring."""

    def __init__(self, p: float, sample_rate: int):
        self.p, self.sr = p, sample_rate
        self._ir: torch.Tensor | None = None

    def _reverb(self, x: torch.Tensor) -> torch.Tensor:
        if self._ir is None:
            self._ir = synthetic_room_ir(self.sr)
        return AF.fftconvolve(x, self._ir)[..., :x.shape[-1]]

    def __call__(self, sample: Sample, gen: torch.Generator) -> Sample:
        if self.p <= 0:
            return sample
        x = sample["audio"]
        if _rand(gen) < self.p:
            x = self._reverb(x)
        if _rand(gen) < self.p:
            x = torch.clamp(x * 2.0, -1.0, 1.0)
        if _rand(gen) < self.p:
            x = pitch_shift(x, self.sr, 1000.0)
        if _rand(gen) < self.p:
            x = AF.lowpass_biquad(x, self.sr, 100.0, 0.707)
        if _rand(gen) < self.p:
            x = x + 0.01 * torch.randn(x.shape, generator=gen)
        sample["audio"] = x
        return sample


# --------------------------------------------------------------------------------------------------------------------
# Spectrogram (audio: (N,) -> (F, Ta) -> (1, F, Ta))
# --------------------------------------------------------------------------------------------------------------------

class AudioLogSpectrogram:
    """|STFT|^2 (n_fft, hop, Hann window of n_fft, centred, reflect padding), then log(x + eps)."""

    def __init__(self, n_fft: int = 512, hop: int = 128, eps: float = 1e-6):
        self.n_fft, self.hop, self.eps = n_fft, hop, eps
        self.window = torch.hann_window(n_fft)

    def __call__(self, sample: Sample, gen: torch.Generator | None = None) -> Sample:
        spec = torch.stft(sample["audio"], self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        sample["audio"] = torch.log(spec.abs().pow(2) + self.eps)  # (F, Ta)
        return sample


class SpecAugment:
    """One frequency mask (width < ``freq_mask``) and one time mask (width < ``time_mask``), each with probability p,
    filled with 0 on the log-spectrogram, drawn as torchaudio's ``mask_along_axis``; no time stretch."""

    def __init__(self, p: float, freq_mask: int = 64, time_mask: int = 200):
        self.p, self.freq_mask, self.time_mask = p, freq_mask, time_mask

    @staticmethod
    def _mask(spec: torch.Tensor, axis: int, param: int, gen: torch.Generator) -> torch.Tensor:
        size = spec.shape[axis]
        width = _rand(gen) * min(param, size)
        start = int(_rand(gen) * (size - width))
        end = start + int(width)
        spec = spec.clone()
        if axis == 0:
            spec[start:end] = 0.0
        else:
            spec[:, start:end] = 0.0
        return spec

    def __call__(self, sample: Sample, gen: torch.Generator) -> Sample:
        if self.p <= 0:
            return sample
        spec = sample["audio"]
        if _rand(gen) < self.p:
            spec = self._mask(spec, 0, self.freq_mask, gen)
        if _rand(gen) < self.p:
            spec = self._mask(spec, 1, self.time_mask, gen)
        sample["audio"] = spec
        return sample


class AudioStandardize:
    """Per-example, per-frequency standardisation over time: (x - mean_t) / (std_t + eps), unbiased std; -> (1, F, Ta).

    There are no dataset-level statistics (official ``AudioStandardNormalize``); the means and stds are kept in
    ``sample["spec_means"]`` / ``sample["spec_stds"]`` only when ``keep_stats``.
    """

    def __init__(self, eps: float = 1e-6, keep_stats: bool = False):
        self.eps, self.keep_stats = eps, keep_stats

    def __call__(self, sample: Sample, gen: torch.Generator | None = None) -> Sample:
        spec = sample["audio"]  # (F, Ta)
        mean = spec.mean(dim=-1, keepdim=True)
        std = spec.std(dim=-1, keepdim=True, unbiased=True)
        if self.keep_stats:
            sample["spec_means"], sample["spec_stds"] = mean[:, 0], std[:, 0]
        sample["audio"] = ((spec - mean) / (std + self.eps)).unsqueeze(0)  # (1, F, Ta)
        return sample


# --------------------------------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------------------------------

class Compose:
    """Apply transforms in order; each is ``t(sample, gen) -> sample``."""

    def __init__(self, transforms: Sequence[Callable[[Sample, torch.Generator], Sample]]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, gen: torch.Generator | None = None) -> Sample:
        gen = gen if gen is not None else torch.Generator().manual_seed(0)
        for t in self.transforms:
            sample = t(sample, gen)
        return sample

    def __repr__(self) -> str:
        return f"Compose({[type(t).__name__ for t in self.transforms]})"


def train_transforms(cfg, geo) -> Compose:
    """The official train sequence for a ``DataConfig`` (its probabilities make the LRS3 / VGGSound-Sparse presets)
    and a ``Geometry`` (crop, sample rate, spectrogram)."""
    return Compose([
        RGBSpatialCrop(geo.crop, random=True, sometimes_upscale_p=cfg.sometimes_upscale_p,
                       upscale_from=cfg.upscale_crop),
        RandomColorDistortion(cfg.p_color_jitter, cfg.p_gray_scale),
        RandomHorizontalFlip(cfg.p_horizontal_flip),
        RGBNormalize(),
        AudioAugment(cfg.p_audio_aug, geo.sample_rate),
        AudioLogSpectrogram(geo.n_fft, geo.hop),
        SpecAugment(cfg.p_audio_aug, cfg.freq_mask, cfg.time_mask),
        AudioStandardize(),
    ])


def eval_transforms(geo) -> Compose:
    """The official test/valid sequence: centre crop, normalisation, log-spectrogram, standardisation."""
    return Compose([
        RGBSpatialCrop(geo.crop, random=False),
        RGBNormalize(),
        AudioLogSpectrogram(geo.n_fft, geo.hop),
        AudioStandardize(),
    ])

