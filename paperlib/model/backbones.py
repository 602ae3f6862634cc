"""Feature extractors ("backbones") of SparseSync and a small CPU pair, with their token-grid arithmetic.

Paper Sec. 3 ("Feature extractors") and Sec. 7.3; the authors' code (v-iashin/SparseSync).

- :class:`S3DVisual`: torchvision's S3D ``features`` (BatchNorm eps 1e-3, momentum 1e-3, no classifier), the same
  network as the official ``S3DVisualFeatures`` (kylemin's S3D; only the module nesting differs, see
  ``paperlib.model.weights.official_key_to_paperlib``). Input (B, T, 3, H, W) time-first, output (B, 1024, t, h, w):
  125x224x224 -> 16x7x7.
- :class:`ResNet18Audio`: torchvision ResNet18 with a 1-channel ``conv1`` (7x7, stride 2, no bias) and no avgpool/fc,
  as the official ``ResNet18AudioFeatures``. Input (B, 1, F, Ta) spectrogram, output (B, 512, f, ta): 257x626 ->
  9x20.
- :class:`SmallVisual` / :class:`SmallAudio`: the "small" CPU pair (not in the paper), for minutes-long CPU trainings
  on the synthetic benchmark. SmallVisual is a (2+1)D conv net (each stage: a spatial 1xkxk conv then a temporal
  kx1x1 conv, BatchNorm + ReLU after each), temporal stride 8, spatial stride 16 (125x64x64 -> 16x4x4;
  125x224x224 -> 16x14x14); SmallAudio is a 2D conv net of overall stride 32 (257x626 -> 9x20, the paper's audio
  grid). Both output 128 channels. Sizes: SmallVisual 250,208 parameters, SmallAudio 97,648.
  Speed (2-core shared CPU, 1 thread, fp32): forward+backward of both on a batch of 8 (crop 64, 125 frames,
  257x626) ~0.3 s (``tests/test_model.py::test_small_backbones_fast``); a whole small model (D=128, depth 3,
  crop 64) forwards one clip in ~50 ms, versus ~25 s for the paper-size model.

No weights are ever downloaded: pretrained weights come only from a user path
(``paperlib.model.weights.load_backbone_weights``). The paper's are Kinetics-400 S3D (the authors' converted file or
torchvision's ``S3D_Weights.KINETICS400_V1`` file, the same network) and the authors' VGGSound ResNet18, one per input
length; the paper profile reads them from ``data_root/weights/`` (``paperlib.model.weights.backbone_weight_paths``).

Every backbone exposes ``out_channels`` and a ``grid(...)`` static method computing its output grid from the input
geometry with the same layer list that builds it (``tests/test_model.py`` checks grid == actual output shape).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn


def conv_out(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or (floor-mode) pooling along one axis."""
    return (n + 2 * padding - kernel) // stride + 1


def _apply(n: int, layers: list[tuple[int, int, int]]) -> int:
    for k, s, p in layers:
        n = conv_out(n, k, s, p)
    if n < 1:
        raise ValueError(f"input of this size is too small for the backbone (output length {n})")
    return n


# (kernel, stride, padding) of every resolution-changing layer, in order (stride-1 same-padding layers omitted).
_S3D_TIME = [(7, 2, 3), (3, 2, 1), (2, 2, 0)]  # stem conv_t, MaxPool3d(3, s2, p1), MaxPool3d(2, s2)
_S3D_SPACE = [(7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (2, 2, 0)]  # stem conv_s, pool(1,3,3) x2, pool 3, pool 2
_RESNET = [(7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1)]  # conv1, maxpool, layer2/3/4 first convs


class S3DVisual(nn.Module):
    """S3D (Xie et al. 2018) trunk, torchvision's implementation without the classifier.

    Shapes: (B, T, 3, H, W) -> (B, 1024, t, h, w) with t, h, w from :meth:`grid` (125x224x224 -> 16x7x7).
    """

    out_channels = 1024

    def __init__(self) -> None:
        super().__init__()
        self.features = torchvision.models.video.s3d(weights=None).features

    @staticmethod
    def grid(frames: int, height: int, width: int) -> tuple[int, int, int]:
        return _apply(frames, _S3D_TIME), _apply(height, _S3D_SPACE), _apply(width, _S3D_SPACE)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        return self.features(x)  # (B, 1024, t, h, w)


class ResNet18Audio(nn.Module):
    """ResNet18 (He et al. 2016) on a 1-channel log-spectrogram, torchvision blocks, no avgpool/fc.

    Shapes: (B, 1, F, Ta) -> (B, 512, f, ta) with f, ta from :meth:`grid` (257x626 -> 9x20).
    Module names equal torchvision's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``) and the official ones.
    """

    out_channels = 512

    def __init__(self) -> None:
        super().__init__()
        r = torchvision.models.resnet18(weights=None)
        # the official code swaps conv1 after construction, so it keeps PyTorch's default Conv2d init
        self.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu, self.maxpool = r.bn1, r.relu, r.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4

    @staticmethod
    def grid(freqs: int, frames: int) -> tuple[int, int]:
        return _apply(freqs, _RESNET), _apply(frames, _RESNET)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(spec))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, f, ta)


def _conv_bn_relu(conv: nn.Module, channels: int, bn: type[nn.Module]) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


# SmallVisual stages: (out channels, spatial kernel, spatial stride, temporal kernel, temporal stride)
_SMALL_V = [(24, 4, 4, 3, 2), (48, 3, 2, 3, 2), (96, 3, 2, 3, 2), (128, 3, 1, 3, 1)]
# SmallAudio stages: (out channels, kernel, stride)
_SMALL_A = [(16, 5, 4), (32, 3, 2), (64, 3, 2), (128, 3, 2)]


def _pad(k: int) -> int:
    return (k - 1) // 2


class SmallVisual(nn.Module):
    """A light (2+1)D conv visual encoder for CPU work (not in the paper).

    Shapes: (B, T, 3, H, W) -> (B, 128, t, h, w), t = T/8, h = H/16, w = W/16 (rounded up; see :meth:`grid`).
    """

    out_channels = _SMALL_V[-1][0]

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout, ks, ss, kt, st in _SMALL_V:
            layers += _conv_bn_relu(nn.Conv3d(cin, cout, (1, ks, ks), (1, ss, ss), (0, _pad(ks), _pad(ks)),
                                              bias=False), cout, nn.BatchNorm3d)
            layers += _conv_bn_relu(nn.Conv3d(cout, cout, (kt, 1, 1), (st, 1, 1), (_pad(kt), 0, 0), bias=False),
                                    cout, nn.BatchNorm3d)
            cin = cout
        self.features = nn.Sequential(*layers)

    @staticmethod
    def grid(frames: int, height: int, width: int) -> tuple[int, int, int]:
        space = [(ks, ss, _pad(ks)) for _, ks, ss, _, _ in _SMALL_V]
        time = [(kt, st, _pad(kt)) for _, _, _, kt, st in _SMALL_V]
        return _apply(frames, time), _apply(height, space), _apply(width, space)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        return self.features(x)  # (B, 128, t, h, w)


class SmallAudio(nn.Module):
    """A light 2D conv spectrogram encoder for CPU work (not in the paper).

    Shapes: (B, 1, F, Ta) -> (B, 128, f, ta), overall stride 32 (257x626 -> 9x20, as ResNet18).
    """

    out_channels = _SMALL_A[-1][0]

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for cout, k, s in _SMALL_A:
            layers += _conv_bn_relu(nn.Conv2d(cin, cout, k, s, _pad(k), bias=False), cout, nn.BatchNorm2d)
            cin = cout
        self.features = nn.Sequential(*layers)

    @staticmethod
    def grid(freqs: int, frames: int) -> tuple[int, int]:
        layers = [(k, s, _pad(k)) for _, k, s in _SMALL_A]
        return _apply(freqs, layers), _apply(frames, layers)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.features(spec)  # (B, 128, f, ta)


BACKBONES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "paper": (S3DVisual, ResNet18Audio),
    "small": (SmallVisual, SmallAudio),
}
