"""The start-time classifiers (position-aware CPU nets; the paper's ResNet18) and their training and held-out
evaluation (``train_probe``)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlib.studies.leakage.config import ProbeConfig
from paperlib.studies.leakage.features import ClipSet
from paperlib.studies.leakage.metrics import binomial_verdict, modulo_chance, modulo_congruence, topk_accuracy


class AudioPositionNet(nn.Module):
    """1-D convolutions over time (frequency bands as channels), a linear head over every time step (no pooling).

    Shapes: (B, bands, T) -> (B, n_classes).
    """

    def __init__(self, bands: int, frames: int, n_classes: int, width: int = 16):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(bands, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
        )
        self.head = nn.Linear(width * frames, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))  # (B, width * T) -> (B, n_classes)


class VideoPositionNet(nn.Module):
    """A small CNN shared over consecutive-frame differences, a linear head over the ordered transitions.

    Shapes: (B, T, C, H, W) float in [0, 1] -> (B, n_classes).
    """

    def __init__(self, channels: int, frames: int, n_classes: int, width: int = 16):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(width * (frames - 1), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        d = (x[:, 1:] - x[:, :-1]).flatten(0, 1)  # (B * (T-1), C, H, W)
        z = self.cnn(d).reshape(b, -1)  # (B * (T-1), width, 1, 1) -> (B, (T-1) * width), transitions in order
        return self.head(z)


class ResNet18StartTime(nn.Module):
    """The paper's classifier: ResNet18, spatial average pooling, a linear head.

    Audio: (B, F, T) log-spectrogram as a 1-channel image. Video: (B, T, 3, H, W) frames stacked along channels in
    temporal order, (B, 3T, H, W), so the first convolution sees the frame order.
    """

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=n_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.net = net  # avgpool (spatial average pooling) + fc (linear head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)  # (B, 1, F, T)
        elif x.ndim == 5:
            x = x.flatten(1, 2)  # (B, T * C, H, W)
        return self.net(x)


def build_classifier(cfg: ProbeConfig, clips: ClipSet) -> nn.Module:
    f0 = clips.features[0]
    if cfg.classifier == "resnet18":
        in_ch = 1 if cfg.modality == "audio" else clips.window * f0.shape[1]
        return ResNet18StartTime(in_ch, clips.n_classes)
    if cfg.classifier != "position":
        raise ValueError(f"unknown classifier {cfg.classifier!r} (position | resnet18)")
    if cfg.modality == "audio":
        return AudioPositionNet(f0.shape[0], clips.window, clips.n_classes, cfg.width)
    return VideoPositionNet(f0.shape[1], clips.window, clips.n_classes, cfg.width)


# ---------------------------------------------------------------------------------------------------------------------
# Training and evaluation


class _Batcher:
    """Slices trims out of the clip features and normalises them (audio: per-band statistics of the training clips)."""

    def __init__(self, clips: ClipSet, train_idx: np.ndarray):
        self.clips = clips
        if clips.modality == "audio":
            total, total_sq, count = 0.0, 0.0, 0  # per-band moments, one clip at a time (memory)
            for i in train_idx:
                f = clips.features[i].astype(np.float64)
                total, total_sq, count = total + f.sum(1), total_sq + (f ** 2).sum(1), count + f.shape[1]
            mean = total / count
            self.mean = mean[:, None].astype(np.float32)
            self.std = (np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0)) + 1e-5)[:, None].astype(np.float32)

    def __call__(self, clip_idx: np.ndarray, classes: np.ndarray) -> torch.Tensor:
        c = self.clips
        items = []
        for i, k in zip(clip_idx, classes):
            s = c.start(int(k))
            if c.modality == "audio":
                items.append((c.features[i][:, s:s + c.window].astype(np.float32) - self.mean) / self.std)
            else:
                items.append(c.features[i][s:s + c.window].astype(np.float32) / 255.0)
        return torch.from_numpy(np.stack(items))  # audio (B, bands, T); video (B, T, C, H, W)


def split_clips(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of clip indices into (train, test); both non-empty for n >= 2."""
    if n < 2:
        raise ValueError(f"need at least 2 usable clips, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def balanced_test_items(test_idx: np.ndarray, n_classes: int, per_clip: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (clip, class) pairs: ``per_clip`` distinct classes per clip, classes used equally often overall."""
    rng = np.random.default_rng(seed + 1)
    per_clip = min(per_clip, n_classes)
    n = len(test_idx) * per_clip
    labels = np.concatenate([rng.permutation(n_classes) for _ in range(math.ceil(n / n_classes))])[:n]
    return np.repeat(test_idx, per_clip), labels


@torch.no_grad()
def _predict(model: nn.Module, batcher: _Batcher, clip_idx: np.ndarray, labels: np.ndarray, batch: int) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = [model(batcher(clip_idx[i:i + batch], labels[i:i + batch]).to(device)).cpu()
           for i in range(0, len(labels), batch)]
    return torch.cat(out).float().numpy()


def train_probe(clips: ClipSet, cfg: ProbeConfig, metrics_path: Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Train the start-time classifier on ``clips`` and evaluate it on held-out clips every epoch.

    Returns a dict with the final Acc@1/Acc@5 (%), chance, the modulo indicator, the binomial p-value and verdict,
    the per-epoch history and the held-out top-5 predictions. Appends one JSON line per epoch to ``metrics_path``.
    """
    from tqdm.auto import tqdm

    if len(clips.features) < 2:
        raise ValueError(f"need at least 2 usable clips, got {len(clips.features)}")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_idx, test_idx = split_clips(len(clips.features), cfg.test_fraction, cfg.seed)
    test_clip, test_y = balanced_test_items(test_idx, clips.n_classes, cfg.test_trims_per_clip, cfg.seed)
    batcher = _Batcher(clips, train_idx)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    model = build_classifier(cfg, clips).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * math.ceil(len(train_idx) * cfg.trims_per_clip / cfg.batch_size))
    history: list[dict[str, float]] = []
    t0 = time.time()
    bar = tqdm(range(cfg.epochs), desc=f"train {cfg.modality}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        clip_order = np.tile(train_idx, cfg.trims_per_clip)
        rng.shuffle(clip_order)
        classes = rng.integers(0, clips.n_classes, size=len(clip_order))  # a fresh random start per pass
        n_correct, loss_sum = 0, 0.0
        for i in range(0, len(clip_order), cfg.batch_size):
            y = torch.from_numpy(classes[i:i + cfg.batch_size]).to(device)
            logits = model(batcher(clip_order[i:i + cfg.batch_size], classes[i:i + cfg.batch_size]).to(device))
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            n_correct += int((logits.argmax(1) == y).sum())
        logits = _predict(model, batcher, test_clip, test_y, max(cfg.batch_size, 64))
        rec = {"epoch": epoch + 1, "train_loss": loss_sum / len(clip_order),
               "train_acc1": 100.0 * n_correct / len(clip_order),
               "test_acc1": 100.0 * topk_accuracy(logits, test_y, 1),
               "test_acc5": 100.0 * topk_accuracy(logits, test_y, min(5, clips.n_classes)),
               "seconds": time.time() - t0}
        history.append(rec)
        bar.set_postfix(acc1=f"{rec['test_acc1']:.1f}", train=f"{rec['train_acc1']:.1f}")
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
    k = min(5, clips.n_classes)
    top5 = np.argsort(-logits, axis=1)[:, :k]
    n_correct1 = int(np.sum(top5[:, 0] == test_y))
    chance1 = 1.0 / clips.n_classes
    pval, verdict = binomial_verdict(n_correct1, len(test_y), chance1, cfg.alpha)
    return {
        "acc1": 100.0 * n_correct1 / len(test_y), "acc5": 100.0 * topk_accuracy(logits, test_y, k),
        "chance_acc1": 100.0 * chance1, "chance_acc5": 100.0 * k / clips.n_classes,
        "modulo_period": cfg.period, "modulo_top5": 100.0 * modulo_congruence(top5, test_y, cfg.period),
        "modulo_chance": 100.0 * modulo_chance(clips.n_classes, cfg.period),
        "p_value": pval, "alpha": cfg.alpha, "verdict": verdict, "test": "one-sided exact binomial, Acc@1 vs 1/C",
        "n_classes": clips.n_classes, "n_train_clips": int(len(train_idx)), "n_test_clips": int(len(test_idx)),
        "n_test_items": int(len(test_y)), "final_train_acc1": history[-1]["train_acc1"],
        "train_seconds": time.time() - t0, "device": str(device), "history": history,
        "test_items": {"clip": [clips.names[i] for i in test_clip], "label": test_y.tolist(), "top5": top5.tolist()},
    }
