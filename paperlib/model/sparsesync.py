"""The SparseSync model family: SparseSync, the transformer without selectors, and the AVST_dec baseline.

Paper Sec. 3 (architecture), Sec. 5 (AVST_dec baseline), Tables 3/5 ("Selectors x" rows), Table 6 (depth), Sec. 7.3;
the authors' code (v-iashin/SparseSync). The file reads from leaves to root: attention, blocks, positional
tables, selectors, sync transformer, the three heads, the full model, ``build_*`` factories, then the summary CLI.

Pipeline (paper geometry: 5 s, 25 fps, 224 px crop, 16 kHz audio, n_fft 512, hop 128):
    video (B, 125, 3, 224, 224) -> S3D -> (B, 1024, 16, 7, 7) -> v_bridge (1x1x1 Conv3d + GELU) -> (B, 16, 7, 7, D)
    audio (B, 1, 257, 626)      -> ResNet18 (1-ch stem) -> (B, 512, 9, 20) -> a_bridge (identity when 512 == D)
    head: input LayerNorms + per-axis positional tables concatenated along channels ([time|width|height] visual,
    [freq|time] audio) -> two feature selectors (k learned queries each; pre-norm blocks: self-attention,
    cross-attention to the un-normalised context, 4x GELU MLP; no final norm) -> sync transformer over
    [OFF; k visual; MOD; k audio] (per-modality input LayerNorms, pre-norm blocks, final LayerNorm) -> bias-free linear
    head on token 0 -> logits (B, C).

Matches the official code where the paper is silent (v-iashin/SparseSync): GELU after the bridge,
concatenated (not summed) per-axis tables (D//3 channels for height and width, the rest for time; D//2 for time and
the rest for frequency in audio), separate ``key/query/value/proj`` linears, exact (erf) GELU, dropouts at the same
places (embedding 0.1 on selectors/context/token sequence, attention 0.1, residual 0.1), and the official init
(N(0, 0.02) for linears and positional tables, zero biases, LayerNorm (1, 0), N(0, 1) for selectors and OFF/MOD).
``tests/test_official_equivalence.py`` proves equality with the official model to 1e-6 (float64).

Deviations (all by design, none changes the paper model):
- Geometry is a parameter: positional-table sizes follow from clip length, fps, crop and audio settings
  (``token_grid``), so 2-7 s clips and any crop (e.g. 240, on which the official code crashes) work.
- Attention uses ``torch.nn.functional.scaled_dot_product_attention``; ``return_attention=True`` switches to an explicit
  softmax path that returns the post-softmax weights (equal to SDPA in eval mode, tested).
- When ``d_model`` differs from the audio backbone's width an ``a_bridge`` (1x1 Conv2d + GELU) is added (the official
  audio bridge is the identity because ResNet18 gives 512 channels = D).
- AVST_dec (never released): designed from the paper text (Sec. 5, after Chen et al. 2021): audio features averaged
  over frequency (then LayerNorm + a learned time table) are the decoder queries, prefixed by a learned OFF token;
  visual features (LayerNorm + the visual tables) are keys/values; ``depth`` pre-norm decoder blocks (self-attention,
  cross-attention, MLP), a final LayerNorm and the bias-free classifier on the OFF token. "Audio backbone trained from
  scratch" is a training choice: leave ``audio_weights`` unset.

Attention-weight names (``return_attention=True``; every value is (B, heads, Tq, Tk), post-softmax):
    sparsesync:  "v_selector.{i}.attn" (k x k), "v_selector.{i}.xattn" (k x t*h*w, context order t,h,w),
                 "a_selector.{i}.attn", "a_selector.{i}.xattn" (k x f*ta, context order f,ta),
                 "sync.{i}.attn" ((2k+2) x (2k+2), tokens [OFF, k visual, MOD, k audio])
    transformer: "transformer.{i}.attn" (N x N, tokens [OFF, t*h*w visual, MOD, f*ta audio])
    avst_dec:    "decoder.{i}.attn" ((1+ta) x (1+ta), [OFF, audio times]), "decoder.{i}.xattn" ((1+ta) x t*h*w)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.geometry import Geometry, official_max_offset
from paperlib.model.backbones import BACKBONES
from paperlib.model.weights import load_backbone_weights

VARIANTS = ("sparsesync", "transformer", "avst_dec")

Attn = dict[str, torch.Tensor]


@dataclass
class ModelConfig:
    """The model family. Literal defaults = the paper's final model (Sec. 3, Table 6 depth 3, 21 classes)."""

    geometry: Geometry = dataclasses.field(default_factory=Geometry)  # window, rates, crop, spectrogram, offset grid
    variant: str = "sparsesync"  # "sparsesync" | "transformer" (Selectors x, Tab. 3/5) | "avst_dec" (Sec. 5 baseline)
    backbone: str = "paper"  # "paper": S3D + ResNet18 (Sec. 3) | "small": light conv pair for CPU work (not in paper)
    depth: int = 3  # L: layers in each selector and in the sync transformer (Tab. 6: 1, 2, 3, 6)
    d_model: int = 512  # D: transformer width (also the bridge output width)
    n_head: int = 8  # attention heads (head dim D / n_head = 64)
    n_selectors: int = 16  # k: learned selector queries per modality (Tab. 5)
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * D (official: 4)
    embd_pdrop: float = 0.1  # dropout on selectors, flattened context and the sync token sequence
    attn_pdrop: float = 0.1  # dropout on attention weights
    resid_pdrop: float = 0.1  # dropout after attention projections and MLPs
    train_visual_backbone: bool = True  # False: visual backbone frozen (no grads, kept in eval mode)
    train_audio_backbone: bool = True  # False: audio backbone frozen (no grads, kept in eval mode)
    visual_weights: str | None = None  # path of pretrained visual-backbone weights (never downloaded)
    audio_weights: str | None = None  # path of pretrained audio-backbone weights (never downloaded)


GEOMETRY_FIELDS = tuple(f.name for f in dataclasses.fields(Geometry))


def nest_geometry(config: dict) -> dict:
    """A model config dict with its geometry nested; dicts of ``paperlib-checkpoint/1`` files held the geometry
    fields flat (and no offset range: the official one for the class count is used)."""
    if "geometry" in config:
        return config
    flat = {k: v for k, v in config.items() if k in GEOMETRY_FIELDS}
    flat.setdefault("max_off_sec", official_max_offset(flat.get("num_classes", Geometry.num_classes)))
    return {**{k: v for k, v in config.items() if k not in GEOMETRY_FIELDS}, "geometry": flat}


def _check(cfg: ModelConfig) -> None:
    if cfg.variant not in VARIANTS:
        raise ValueError(f"unknown model variant {cfg.variant!r}; choose one of {VARIANTS}")
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {cfg.backbone!r}; choose one of {tuple(BACKBONES)}")
    if cfg.d_model % cfg.n_head:
        raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
    for name in ("depth", "d_model", "n_head", "n_selectors"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    cfg.geometry.validate()


def input_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Per-sample input shapes the data pipeline must produce.

    Returns: {"video": (T, 3, crop, crop), "audio": (1, n_fft // 2 + 1, Ta)} with T = round(clip_sec * fps) and
    Ta the frame count of a centred STFT of round(clip_sec * sample_rate) samples (paper: (125, 3, 224, 224) and
    (1, 257, 626)).
    """
    g = cfg.geometry
    return {"video": (g.frames, 3, g.crop, g.crop), "audio": (1, *g.spec_shape)}


def token_grid(cfg: ModelConfig) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """Backbone output grids ((t, h, w), (f, ta)) for the config's geometry (paper: (16, 7, 7), (9, 20))."""
    _check(cfg)
    shapes = input_shapes(cfg)
    frames, _, height, width = shapes["video"]
    _, freqs, aframes = shapes["audio"]
    vis_cls, aud_cls = BACKBONES[cfg.backbone]
    return vis_cls.grid(frames, height, width), aud_cls.grid(freqs, aframes)


# ---------------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head attention with separate query/key/value/output linears (minGPT style, as the official code).

    ``forward(x, context=None)``: self-attention when ``context`` is None, else cross-attention (queries from x).
    Shapes: x (B, N, D), context (B, M, D) -> (B, N, D), weights (B, heads, N, M) or None.
    """

    def __init__(self, d_model: int, n_head: int, attn_pdrop: float, resid_pdrop: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.attn_pdrop = attn_pdrop
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_drop = nn.Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        ctx = x if context is None else context
        b, n, d = x.shape
        m = ctx.shape[1]
        h = self.n_head
        q = self.query(x).view(b, n, h, d // h).transpose(1, 2)  # (B, h, N, Dh)
        k = self.key(ctx).view(b, m, h, d // h).transpose(1, 2)  # (B, h, M, Dh)
        v = self.value(ctx).view(b, m, h, d // h).transpose(1, 2)  # (B, h, M, Dh)
        p = self.attn_pdrop if self.training else 0.0
        weights = None
        if need_weights:
            weights = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(d // h), dim=-1)  # (B, h, N, M)
            y = F.dropout(weights, p, self.training) @ v  # (B, h, N, Dh)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, N, Dh)
        y = y.transpose(1, 2).reshape(b, n, d)  # (B, N, D)
        return self.resid_drop(self.proj(y)), weights


def _mlp(d_model: int, ratio: int, pdrop: float) -> nn.Sequential:
    # keys mlp.0 / mlp.2 as the official code; exact (erf) GELU
    return nn.Sequential(nn.Linear(d_model, ratio * d_model), nn.GELU(), nn.Linear(ratio * d_model, d_model),
                         nn.Dropout(pdrop))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), x + MLP(LN(x)). Shapes: (B, N, D) -> (B, N, D)."""

    def __init__(self, d_model: int, n_head: int, mlp_ratio: int, attn_pdrop: float, resid_pdrop: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head, attn_pdrop, resid_pdrop)
        self.mlp = _mlp(d_model, mlp_ratio, resid_pdrop)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, Attn]:
        y, w = self.attn(self.ln1(x), need_weights=need_weights)
        x = x + y
        x = x + self.mlp(self.ln2(x))
        return x, ({"attn": w} if need_weights else {})


class CrossBlock(nn.Module):
    """Pre-norm decoder block: x + SelfAttn(LN1(x)), x + CrossAttn(LN2(x), context), x + MLP(LN3(x)).

    The context is not normalised inside the block (official). Shapes: x (B, N, D), context (B, M, D) -> (B, N, D).
    """

    def __init__(self, d_model: int, n_head: int, mlp_ratio: int, attn_pdrop: float, resid_pdrop: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ln3 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head, attn_pdrop, resid_pdrop)
        self.xattn = Attention(d_model, n_head, attn_pdrop, resid_pdrop)
        self.mlp = _mlp(d_model, mlp_ratio, resid_pdrop)

    def forward(self, x: torch.Tensor, context: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, Attn]:
        y, w_self = self.attn(self.ln1(x), need_weights=need_weights)
        x = x + y
        y, w_cross = self.xattn(self.ln2(x), context, need_weights=need_weights)
        x = x + y
        x = x + self.mlp(self.ln3(x))
        return x, ({"attn": w_self, "xattn": w_cross} if need_weights else {})


def _grid_error(name: str, got: tuple[int, ...], table: tuple[int, ...]) -> ValueError:
    return ValueError(f"{name} features have grid {got} but the positional tables were built for {table}: the input "
                      f"geometry (clip length, fps, crop, sample rate, STFT) differs from the model config's")


class VisualPositionalEmbedding(nn.Module):
    """Per-axis learned tables concatenated along channels as [time | width | height] (official order).

    Channels: D // 3 for height and width, D - 2 * (D // 3) for time (512 -> 172/170/170).
    Shapes: forward() -> (t, h, w, D).
    """

    def __init__(self, grid: tuple[int, int, int], d_model: int) -> None:
        super().__init__()
        t, h, w = grid
        dhw = d_model // 3
        self.grid = tuple(grid)
        self.time_embed = nn.Parameter(torch.zeros(t, d_model - 2 * dhw))
        self.height_embed = nn.Parameter(torch.zeros(h, dhw))
        self.width_embed = nn.Parameter(torch.zeros(w, dhw))

    def forward(self, grid: tuple[int, ...] | None = None) -> torch.Tensor:
        if grid is not None and tuple(grid) != self.grid:
            raise _grid_error("visual", tuple(grid), self.grid)
        t, h, w = self.grid
        return torch.cat([self.time_embed[:, None, None, :].expand(t, h, w, -1),
                          self.width_embed[None, None, :, :].expand(t, h, w, -1),
                          self.height_embed[None, :, None, :].expand(t, h, w, -1)], dim=-1)  # (t, h, w, D)


class AudioPositionalEmbedding(nn.Module):
    """Per-axis learned tables concatenated along channels as [freq | time] (D - D // 2 and D // 2 channels).

    Shapes: forward() -> (f, ta, D).
    """

    def __init__(self, grid: tuple[int, int], d_model: int) -> None:
        super().__init__()
        f, ta = grid
        self.grid = tuple(grid)
        self.freq_embed = nn.Parameter(torch.zeros(f, d_model - d_model // 2))
        self.time_embed = nn.Parameter(torch.zeros(ta, d_model // 2))

    def forward(self, grid: tuple[int, ...] | None = None) -> torch.Tensor:
        if grid is not None and tuple(grid) != self.grid:
            raise _grid_error("audio", tuple(grid), self.grid)
        f, ta = self.grid
        return torch.cat([self.freq_embed[:, None, :].expand(f, ta, -1),
                          self.time_embed[None, :, :].expand(f, ta, -1)], dim=-1)  # (f, ta, D)


def _init_weights(module: nn.Module) -> None:
    """Official init: N(0, 0.02) linears and positional tables, zero biases, LayerNorm (1, 0)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (VisualPositionalEmbedding, AudioPositionalEmbedding)):
        for p in module.parameters(recurse=False):
            nn.init.normal_(p, 0.0, 0.02)


# ---------------------------------------------------------------------------------------------------------------------
# Selectors and the sync transformer
# ---------------------------------------------------------------------------------------------------------------------


class FeatureSelector(nn.Module):
    """k learned queries that attend to a flattened feature grid (paper Sec. 3, "Feature selectors").

    Shapes: context (B, M, D) -> selected (B, k, D).
    """

    def __init__(self, d_model: int, n_head: int, depth: int, n_selectors: int, mlp_ratio: int, embd_pdrop: float,
                 attn_pdrop: float, resid_pdrop: float) -> None:
        super().__init__()
        self.selectors = nn.Parameter(torch.randn(n_selectors, d_model))  # N(0, 1), official
        self.selectors_pos = nn.Parameter(torch.zeros(n_selectors, d_model))  # N(0, 0.02) after _init_weights
        self.selectors_drop = nn.Dropout(embd_pdrop)
        self.context_drop = nn.Dropout(embd_pdrop)
        self.blocks = nn.ModuleList(
            [CrossBlock(d_model, n_head, mlp_ratio, attn_pdrop, resid_pdrop) for _ in range(depth)])
        nn.init.normal_(self.selectors_pos, 0.0, 0.02)

    def forward(self, context: torch.Tensor, need_weights: bool = False, name: str = "selector"
                ) -> tuple[torch.Tensor, Attn]:
        b = context.shape[0]
        x = self.selectors_drop((self.selectors + self.selectors_pos).expand(b, -1, -1))  # (B, k, D)
        context = self.context_drop(context)
        attn: Attn = {}
        for i, block in enumerate(self.blocks):
            x, w = block(x, context, need_weights)
            attn.update({f"{name}.{i}.{k}": v for k, v in w.items()})
        return x, attn


class SyncTransformer(nn.Module):
    """Transformer over [OFF; k visual; MOD; k audio] (paper Sec. 3, "Synchronisation module").

    Per-modality input LayerNorms, no positional encoding, pre-norm blocks, final LayerNorm.
    Shapes: vis (B, kv, D), aud (B, ka, D) -> (B, kv + ka + 2, D).
    """

    def __init__(self, d_model: int, n_head: int, depth: int, mlp_ratio: int, embd_pdrop: float, attn_pdrop: float,
                 resid_pdrop: float) -> None:
        super().__init__()
        self.off_token = nn.Parameter(torch.randn(1, 1, d_model))  # N(0, 1), official
        self.mod_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.vis_norm = nn.LayerNorm(d_model)
        self.aud_norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(embd_pdrop)
        self.blocks = nn.ModuleList([Block(d_model, n_head, mlp_ratio, attn_pdrop, resid_pdrop) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, Attn]:
        b = vis.shape[0]
        x = torch.cat([self.off_token.expand(b, -1, -1), self.vis_norm(vis),
                       self.mod_token.expand(b, -1, -1), self.aud_norm(aud)], dim=1)  # (B, kv + ka + 2, D)
        x = self.drop(x)
        attn: Attn = {}
        for i, block in enumerate(self.blocks):
            x, w = block(x, need_weights)
            attn.update({f"sync.{i}.{k}": v for k, v in w.items()})
        return self.ln_f(x), attn


# ---------------------------------------------------------------------------------------------------------------------
# Heads: everything after the bridge, callable on features alone (the memory study of Fig. 4 uses them directly)
# ---------------------------------------------------------------------------------------------------------------------


class _HeadBase(nn.Module):
    """Input LayerNorms + positional tables shared by all heads.

    Shapes of ``forward``: vis (B, t, h, w, D), aud (B, f, ta, D) -> logits (B, C) [, attention dict].
    """

    def __init__(self, vis_grid: tuple[int, int, int], aud_grid: tuple[int, int], d_model: int) -> None:
        super().__init__()
        self.vis_norm = nn.LayerNorm(d_model)
        self.aud_norm = nn.LayerNorm(d_model)
        self.vis_pos = VisualPositionalEmbedding(vis_grid, d_model)
        self.aud_pos = AudioPositionalEmbedding(aud_grid, d_model)

    def embed(self, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LayerNorm + positional tables, flattened: (B, t*h*w, D) in t,h,w order and (B, f*ta, D) in f,ta order."""
        vis = self.vis_norm(vis) + self.vis_pos(vis.shape[1:4])  # (B, t, h, w, D)
        aud = self.aud_norm(aud) + self.aud_pos(aud.shape[1:3])  # (B, f, ta, D)
        return vis.flatten(1, 3), aud.flatten(1, 2)  # (B, t*h*w, D), (B, f*ta, D)


class SparseSyncHead(_HeadBase):
    """Selectors + sync transformer + classifier (the official ``transformer.*`` submodule)."""

    def __init__(self, vis_grid: tuple[int, int, int], aud_grid: tuple[int, int], d_model: int, n_head: int,
                 depth: int, n_selectors: int, num_classes: int, mlp_ratio: int = 4, embd_pdrop: float = 0.1,
                 attn_pdrop: float = 0.1, resid_pdrop: float = 0.1) -> None:
        super().__init__(vis_grid, aud_grid, d_model)
        args = (d_model, n_head, depth, n_selectors, mlp_ratio, embd_pdrop, attn_pdrop, resid_pdrop)
        self.v_selector = FeatureSelector(*args)
        self.a_selector = FeatureSelector(*args)
        self.sync = SyncTransformer(d_model, n_head, depth, mlp_ratio, embd_pdrop, attn_pdrop, resid_pdrop)
        self.classifier = nn.Linear(d_model, num_classes, bias=False)
        self.apply(_init_weights)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor, return_attention: bool = False):
        vis, aud = self.embed(vis, aud)
        v_sel, attn = self.v_selector(vis, return_attention, "v_selector")  # (B, k, D)
        a_sel, a_attn = self.a_selector(aud, return_attention, "a_selector")  # (B, k, D)
        x, s_attn = self.sync(v_sel, a_sel, return_attention)  # (B, 2k + 2, D)
        logits = self.classifier(x[:, 0])  # (B, C)
        return (logits, {**attn, **a_attn, **s_attn}) if return_attention else logits


class TransformerHead(_HeadBase):
    """The transformer without selectors ("Selectors x", official ``configs/transformer.yaml``).

    Tokens [OFF; t*h*w visual; MOD; f*ta audio] (966 at paper size) -> pre-norm blocks -> LayerNorm -> classifier.
    """

    def __init__(self, vis_grid: tuple[int, int, int], aud_grid: tuple[int, int], d_model: int, n_head: int,
                 depth: int, num_classes: int, mlp_ratio: int = 4, embd_pdrop: float = 0.1, attn_pdrop: float = 0.1,
                 resid_pdrop: float = 0.1) -> None:
        super().__init__(vis_grid, aud_grid, d_model)
        self.off_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.mod_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.drop = nn.Dropout(embd_pdrop)
        self.blocks = nn.ModuleList([Block(d_model, n_head, mlp_ratio, attn_pdrop, resid_pdrop) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes, bias=False)
        self.apply(_init_weights)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor, return_attention: bool = False):
        vis, aud = self.embed(vis, aud)
        b = vis.shape[0]
        x = torch.cat([self.off_token.expand(b, -1, -1), vis, self.mod_token.expand(b, -1, -1), aud], dim=1)  # (B,N,D)
        x = self.drop(x)
        attn: Attn = {}
        for i, block in enumerate(self.blocks):
            x, w = block(x, return_attention)
            attn.update({f"transformer.{i}.{k}": v for k, v in w.items()})
        logits = self.classifier(self.ln_f(x)[:, 0])  # (B, C)
        return (logits, attn) if return_attention else logits


class AvstDecHead(_HeadBase):
    """AVST_dec baseline (paper Sec. 5): frequency-pooled audio queries decode the visual features.

    Queries [OFF; ta audio times] (audio averaged over frequency, LayerNorm, + a learned time table); keys/values the
    t*h*w visual tokens (LayerNorm + visual tables); ``depth`` CrossBlocks; LayerNorm; classifier on OFF.
    """

    def __init__(self, vis_grid: tuple[int, int, int], aud_grid: tuple[int, int], d_model: int, n_head: int,
                 depth: int, num_classes: int, mlp_ratio: int = 4, embd_pdrop: float = 0.1, attn_pdrop: float = 0.1,
                 resid_pdrop: float = 0.1) -> None:
        super().__init__(vis_grid, aud_grid, d_model)
        del self.aud_pos  # the audio is pooled over frequency: only a time table is needed
        self.aud_grid = tuple(aud_grid)
        self.aud_time_pos = nn.Parameter(torch.zeros(aud_grid[1], d_model))
        self.off_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.query_drop = nn.Dropout(embd_pdrop)
        self.context_drop = nn.Dropout(embd_pdrop)
        self.blocks = nn.ModuleList(
            [CrossBlock(d_model, n_head, mlp_ratio, attn_pdrop, resid_pdrop) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes, bias=False)
        self.apply(_init_weights)
        nn.init.normal_(self.aud_time_pos, 0.0, 0.02)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor, return_attention: bool = False):
        if tuple(aud.shape[1:3]) != self.aud_grid:
            raise _grid_error("audio", tuple(aud.shape[1:3]), self.aud_grid)
        b = vis.shape[0]
        vis = (self.vis_norm(vis) + self.vis_pos(vis.shape[1:4])).flatten(1, 3)  # (B, t*h*w, D)
        aud = self.aud_norm(aud.mean(dim=1)) + self.aud_time_pos  # (B, ta, D): pooled over frequency
        x = self.query_drop(torch.cat([self.off_token.expand(b, -1, -1), aud], dim=1))  # (B, 1 + ta, D)
        ctx = self.context_drop(vis)
        attn: Attn = {}
        for i, block in enumerate(self.blocks):
            x, w = block(x, ctx, return_attention)
            attn.update({f"decoder.{i}.{k}": v for k, v in w.items()})
        logits = self.classifier(self.ln_f(x)[:, 0])  # (B, C)
        return (logits, attn) if return_attention else logits


# ---------------------------------------------------------------------------------------------------------------------
# The full model
# ---------------------------------------------------------------------------------------------------------------------


class SyncModel(nn.Module):
    """Backbones -> bridges -> head. Backbones are passed in (DETR style).

    forward(video (B, T, 3, H, W), audio (B, 1, F, Ta), return_attention=False) -> logits (B, C)
    or (logits, {name: (B, heads, Tq, Tk)}). A frozen backbone gets no gradients and stays in eval mode.
    """

    def __init__(self, visual_backbone: nn.Module, audio_backbone: nn.Module, head: nn.Module, d_model: int,
                 train_visual_backbone: bool = True, train_audio_backbone: bool = True) -> None:
        super().__init__()
        self.visual_backbone = visual_backbone
        self.audio_backbone = audio_backbone
        # 1x1x1 Conv3d followed by GELU (official ConvBridgeVisual); keys v_bridge.0.*
        self.v_bridge = nn.Sequential(nn.Conv3d(visual_backbone.out_channels, d_model, kernel_size=1), nn.GELU())
        ca = audio_backbone.out_channels
        self.a_bridge = nn.Identity() if ca == d_model else nn.Sequential(nn.Conv2d(ca, d_model, 1), nn.GELU())
        self.head = head
        self.train_visual_backbone = train_visual_backbone
        self.train_audio_backbone = train_audio_backbone
        self.visual_backbone.requires_grad_(train_visual_backbone)
        self.audio_backbone.requires_grad_(train_audio_backbone)
        self.train(True)

    def train(self, mode: bool = True) -> SyncModel:
        super().train(mode)
        if not self.train_visual_backbone:
            self.visual_backbone.eval()
        if not self.train_audio_backbone:
            self.audio_backbone.eval()
        return self

    def features(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbones + bridges. Returns vis (B, t, h, w, D), aud (B, f, ta, D)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_visual_backbone):
            vis = self.visual_backbone(video)  # (B, Cv, t, h, w)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_audio_backbone):
            aud = self.audio_backbone(audio)  # (B, Ca, f, ta)
        vis = self.v_bridge(vis).permute(0, 2, 3, 4, 1)  # (B, t, h, w, D)
        aud = self.a_bridge(aud).permute(0, 2, 3, 1)  # (B, f, ta, D)
        return vis, aud

    def forward(self, video: torch.Tensor, audio: torch.Tensor, return_attention: bool = False):
        vis, aud = self.features(video, audio)
        return self.head(vis, aud, return_attention)


def build_head(cfg: ModelConfig, vis_grid: tuple[int, int, int] | None = None,
               aud_grid: tuple[int, int] | None = None) -> nn.Module:
    """The part after the bridge for ``cfg.variant``; grids default to ``token_grid(cfg)`` (no backbones built)."""
    _check(cfg)
    grids = token_grid(cfg)
    vis_grid = tuple(vis_grid or grids[0])
    aud_grid = tuple(aud_grid or grids[1])
    common = dict(d_model=cfg.d_model, n_head=cfg.n_head, depth=cfg.depth, num_classes=cfg.geometry.num_classes,
                  mlp_ratio=cfg.mlp_ratio, embd_pdrop=cfg.embd_pdrop, attn_pdrop=cfg.attn_pdrop,
                  resid_pdrop=cfg.resid_pdrop)
    if cfg.variant == "sparsesync":
        return SparseSyncHead(vis_grid, aud_grid, n_selectors=cfg.n_selectors, **common)
    if cfg.variant == "transformer":
        return TransformerHead(vis_grid, aud_grid, **common)
    return AvstDecHead(vis_grid, aud_grid, **common)


def build_backbones(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(visual, audio) backbones for ``cfg.backbone``, loading user weights when paths are given."""
    vis_cls, aud_cls = BACKBONES[cfg.backbone]
    visual, audio = vis_cls(), aud_cls()
    if cfg.visual_weights or cfg.audio_weights:
        if cfg.visual_weights:
            load_backbone_weights(visual, cfg.visual_weights, "visual")
        if cfg.audio_weights:
            load_backbone_weights(audio, cfg.audio_weights, "audio")
    return visual, audio


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put every convolution weight in channels-last memory order (3-D convolutions: ``channels_last_3d``), in place.

    Values are unchanged; oneDNN then runs the convolutions in its fastest CPU layout (``bench.cpu_inference`` measures
    it beside the plain forward, with the logit difference), and their sums are rounded in another order.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            m.to(memory_format=torch.channels_last_3d)
        elif isinstance(m, nn.Conv2d):
            m.to(memory_format=torch.channels_last)
    return model


def build_model(cfg: ModelConfig) -> SyncModel:
    """The full model for ``cfg`` (see the module docstring for the variants)."""
    _check(cfg)
    visual, audio = build_backbones(cfg)
    return SyncModel(visual, audio, build_head(cfg), cfg.d_model, cfg.train_visual_backbone,
                     cfg.train_audio_backbone)


# ---------------------------------------------------------------------------------------------------------------------
# Model summary: parameters per component and FLOPs per clip (fake/meta tensors, no real compute)
# ---------------------------------------------------------------------------------------------------------------------


def _numel(module: nn.Module | None, trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _count_flops(model: nn.Module, cfg: ModelConfig, backward: bool) -> dict[str, int]:
    from torch.utils.flop_counter import FlopCounterMode

    shapes = input_shapes(cfg)
    video = torch.empty((1, *shapes["video"]), device="meta")
    audio = torch.empty((1, *shapes["audio"]), device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(video, audio)
        if backward:
            out.sum().backward()
    out_counts = {"total": int(counter.get_total_flops())}
    if backward:  # the counter cannot attribute backward FLOPs to modules reliably: total only
        return out_counts
    counts = counter.get_flop_counts()
    for name in ("visual_backbone", "audio_backbone", "v_bridge", "a_bridge", "head"):
        key = f"{type(model).__name__}.{name}"
        out_counts[name] = int(sum(counts.get(key, {}).values()))
    return out_counts


def model_summary(cfg: ModelConfig, flops: bool = True) -> dict:
    """Parameters per component and FLOPs per clip (batch 1) for ``cfg``, computed on the meta device.

    Returns a plain dict: ``params`` {visual_backbone, audio_backbone, bridge, input_embed (input LayerNorms +
    positional tables), selectors, sync_transformer (or transformer / decoder), classifier, head (all after the
    bridge), total, trainable}, ``flops_forward`` and ``flops_train_step`` (forward + backward) per component,
    ``token_grid`` and ``input_shapes``. FLOPs count a multiply-add as 2 and cover matmuls,
    convolutions and attention only (torch.utils.flop_counter; normalisation and element-wise ops are not counted).
    """
    cfg = dataclasses.replace(cfg, visual_weights=None, audio_weights=None)
    _check(cfg)
    with torch.device("meta"):
        model = build_model(cfg)
    head = model.head
    embed = sum(_numel(m) for m in (head.vis_norm, head.aud_norm, head.vis_pos, getattr(head, "aud_pos", None)))
    if isinstance(head, AvstDecHead):
        embed += head.aud_time_pos.numel()
    params = {
        "visual_backbone": _numel(model.visual_backbone),
        "audio_backbone": _numel(model.audio_backbone),
        "bridge": _numel(model.v_bridge) + _numel(model.a_bridge),
        "input_embed": embed,
    }
    if cfg.variant == "sparsesync":
        params["selectors"] = _numel(head.v_selector) + _numel(head.a_selector)
        params["sync_transformer"] = _numel(head.sync)
    elif cfg.variant == "transformer":
        params["transformer"] = _numel(head) - embed - _numel(head.classifier)
    else:
        params["decoder"] = _numel(head) - embed - _numel(head.classifier)
    params["classifier"] = _numel(head.classifier)
    params["head"] = _numel(head)
    params["total"] = _numel(model)
    params["trainable"] = _numel(model, trainable_only=True)
    vis_grid, aud_grid = token_grid(cfg)
    out = {"config": dataclasses.asdict(cfg), "input_shapes": {k: list(v) for k, v in input_shapes(cfg).items()},
           "token_grid": {"visual": list(vis_grid), "audio": list(aud_grid)}, "params": params}
    if flops:
        model.eval()
        with torch.no_grad():
            out["flops_forward"] = _count_flops(model, cfg, backward=False)
        model.train()
        out["flops_train_step"] = _count_flops(model, cfg, backward=True)
    return out
