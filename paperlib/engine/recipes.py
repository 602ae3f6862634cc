"""Training recipes that get the model off the chance plateau (loss stuck at ln C): an initialisation and auxiliary
losses, reached by the engine through one training objective (:class:`RecipeObjective`). Each of the three variants
(SparseSync, the no-selector transformer, AVST_dec) gets every part that has a counterpart in its architecture, so a
comparison of variants under the recipe compares architectures, not recipes.

Paper: none of this is in the paper (Sec. 7.3 only reports a long warm-up on LRS3); the models stay the paper's
(``paperlib.model.sparsesync``): every component here only changes *initial values* of their parameters or adds a
*training-time* loss term that is dropped later. Measurements: the plateau study (:mod:`paperlib.engine.plateau`,
``python -m paperlib plateau``) and the README section "What to expect and how to get off the plateau".

Why the plateau: each stream alone carries no offset information. At the official
initialisation (linears and positional tables N(0, 0.02), selectors N(0, 1)) the positional tables are ~50x weaker than
the LayerNorm'd features, so every selector attends almost uniformly over time and returns a time average; the sync
transformer's attention is near-uniform too, so the OFF token does not depend on the *product* of visual and audio
content, and the first-order gradient carries no label signal (a saddle at loss ln C). Leaving it needs several small
factors (positional tables x key weights x query weights x value weights ...) to grow together, which takes thousands
of steps; with Adam the update is dominated by noise meanwhile. The two other heads sit on the same saddle: their
attention is near-uniform as well, and their tables carry no usable time either.

Components for the SparseSync head (composable; what / why / evidence; measured with the plateau study):

``time_anchored_init(head, clip_sec)``  (changes initial values, never the architecture)
    What: (1) sinusoidal time codes (RMS 1, as strong as LayerNorm'd features) in the time channels of the visual and
    audio positional tables; selector s starts as the code of time (s + 0.5) L / k, and the query/key weights of each
    selector's first cross-attention read the time channels (scaled so a selector covers ~1-2 time cells; value and
    output weights start at the identity): selected tokens are time-specific and carry their time code from step 0.
    (2) ``sync_passthrough``: value/output weights of the first and last sync blocks start at the identity, so what a
    token picks from the other modality, and OFF's average of the tokens, reach the classifier at full strength.
    (3) ``modality_flag``: one channel per head is +1 on visual and -1 on audio sync tokens (input LayerNorm gain 0,
    bias +-1) and the first block's query/key read it with +g / -g: cross-modal pairs get +g^2 / sqrt(Dh), same-modality
    pairs (a token and itself included) -g^2 / sqrt(Dh), so visual tokens look at audio tokens and vice versa.
    (4) ``sync_identity_qk``: the first block's query = key = identity on the other channels (content similarity, what
    the cross-correlation aux loss makes matching moments share), time-code channels damped at the sync input.
    Why: with these, a visual token's output holds the time code of the audio moment it matched; OFF's average of those
    codes is a Fourier feature of the offset, which a linear classifier reads: the saddle is gone once the first block
    matches content. Evidence: alone it does not leave the plateau (easy 3-class task: official and anchor-only both at
    ln 3 after 600 steps); with the matching loss below it does (~150-400 steps).

``match_loss(view, ...)`` (+ ``recipe_parts`` for the view; ``sync_match_loss`` on ``sparsesync_parts``' q, k)
    What: for each visual token whose moment lies inside the audio window, cross-entropy between the softmax of its
    first-sync-block logits over the audio tokens and a Gaussian target at the audio token of the same moment (known
    from the label and the anchored selector times; a training aid that needs time-anchored selectors). Why: a
    first-order, multiplicative (q . k) signal that teaches the block to match content across modalities; the main
    loss then leaves ln C. Evidence: ideal-token head 21 classes, left the plateau at step 579 (official init: at ln 21
    after 5,300 steps in the prototype); dense-crop full model: left after ~770-950 steps. A variant that read the
    offset off the *sum* of attention logits along each lag (instead of per-row softmax matching) lowered its own loss
    to 0.45 but the main loss stayed at ln 21.

``xcorr_logits(vis, aud, ...)``  (any variant; a training aid)
    What: a parameter-free cross-correlation classifier on the bridge outputs (LayerNorm, pool over space / frequency,
    remove the time mean, cosine similarity of every visual time with every audio time, summed along each class's lag
    with a Gaussian kernel one grid step wide) trained with cross-entropy beside the main loss. Why: gives the backbones
    a first-order multiplicative signal at once (its own loss falls from 3.0 to ~0.7 within ~300 dense-crop steps) and
    makes matching visual and audio features similar, which the identity query/key compares. Never used to predict.

SparseSync at depth 1 (one selector layer, one sync block)
    The recipe's route to the classifier needs two sync blocks: the matching happens in the first block's attention,
    and OFF reads the matched tokens in a later one. With one block OFF attends to the selector tokens in the same
    attention that does the matching, so it reads them before the match: what reaches the classifier is a weighted
    average of per-token values, each a function of one modality, and the offset (a product of visual and audio
    content) can only come from the MLP acting on that average, once each modality's summary places its own events
    in time. Measured (plateau study, full, dense-crop, 21 classes, 3 seeds each way, cap 4,000 steps): the first
    block learns the matching (match loss 2.87 at step 30; 1.55-1.58 at 4,000 in the four runs that got there;
    floor 1.36). From random extractors the main loss stayed at ln 21 in all three runs. With the upstream weights,
    two of three runs left the training-loss plateau, at 2,070 and 1,430 steps (2.3-3.3x SparseSync's median exit
    with the weights, 630), with test top-1 still at the null 200 steps later. That the weights matter only here is
    consistent with the route above, which leans on the features rather than on the matching. The paper's depth-1
    model reached 61.7 % on LRS3 "No face crop" (Table 6) with pre-trained extractors and a GPU budget.

The other heads get the same parts where their architecture has them (``time_anchored_init``, ``recipe_parts`` and
``anchored_parts`` dispatch on the head type; ``anchored_parts`` names what applies and why the rest does not). Their
tokens are grid cells, so each token's time is its cell's time: the matching loss needs no anchoring there. In both,
the visual and audio codes sit in disjoint channel ranges (the tables' time channels), so the identity comparison never
compares a visual code with an audio code (which would pull every match towards offset 0), and codes ride along in
the values. There is no LayerNorm between the tables and the first block (SparseSync's sync input LayerNorm), so the
damping ``sync_code_gain`` does there is the codes' amplitude here (``code_amplitude x sync_code_gain``: 0.5, as the
SparseSync sync input). Not yet measured for these heads.

No-selector transformer (``TransformerHead``: [OFF; t*h*w visual; MOD; f*ta audio] through self-attention blocks)
    time codes in ``vis_pos.time_embed`` / ``aud_pos.time_embed``; passthrough in the first and last blocks'
    attention; identity query/key and the modality flag on the first block (the flag is the input LayerNorms' bias,
    +1 visual / -1 audio in the last channel of every head, with the positional tables zero there; the time codes fill
    the remaining time channels). Matching loss: every visual token (its time: its frame cell t) against the f*ta
    audio tokens; the target's mass at a moment is shared by the f frequency rows of that time. Not applicable:
    selector anchors (no selectors).
    Measured (dense-crop, 21 classes, random extractors, one seed, short runs on a 64-clip set): the head stays at
    ln 21 for 1,000 steps where SparseSync leaves it at ~650 on the same data; its xcorr term falls as SparseSync's
    (3.1 -> 0.8 by step 400, whatever the match weight: 0, 1 or 3), and the match gradient on the shared features is
    a fraction of xcorr's, so the aids do not fight. What fails is the matching: its match loss falls to the level
    a query reaches from its own time alone (4.88 nats; floor 3.57, the target's entropy, ln 9 of it from sharing the
    mass over frequency rows) and closes 8 % of the gap to the floor by step 1,000 (SparseSync: ~50 % by its exit).
    A single token pair (one visual cell, one frequency row) carries about half the evidence of the pooled features
    xcorr compares (z 0.47 against 1.07), and the row-shared target flattens the keys across rows. Scoring the match
    on time cells (the softmax summed over keys that share a time) closed 21 % of the gap but did not leave chance
    within 1,000 steps either; nor did a sharper first-block comparison (``recipe_sync_identity_qk`` 2.0: match 4.79
    at step 1,000) or a second match term on queries and keys pooled per time cell (cross-entropy 3.07 at step
    1,000). The anchored parts were checked and do what is written above (visual queries put 99 %
    of their attention on audio tokens at step 0). In the plateau study (full, 3 seeds with the upstream weights and
    3 from random extractors, 4,000 steps each) every run stayed at chance and its match loss ended at 4.70-4.72.

AVST_dec (``AvstDecHead``: queries [OFF; ta audio times], keys/values the t*h*w visual tokens; CrossBlocks of
self-attention, cross-attention, MLP)
    time codes in ``vis_pos.time_embed`` and in the audio-time channels (the last D // 2, as in the audio table) of
    ``aud_time_pos``; identity query/key on the first block's cross-attention (audio query vs visual key content);
    passthrough on that cross-attention (what an audio time picks from the video) and on the last block's
    self-attention (OFF's read-out of the audio tokens that hold it; at depth 1 OFF reads them before the match).
    Matching loss on the first cross-attention: each audio query at time ta should find the visual tokens at
    tv = ta + o (visual time tv matches audio time tv - o), masked where that lies outside the visual window; target
    width one visual time cell. Not applicable: selector anchors (no selectors) and the modality flag (the matching
    attention is cross-modal by construction; the self-attention sees audio tokens only).

``aux_weight(step, ...)`` schedules both aids (constant, then linear to 0); ``AuxLossModel`` is the model plus the
aids (logits identical to the model's). :class:`RecipeObjective` is the training objective of
:mod:`paperlib.engine.objectives` built from them (the paper's cross-entropy plus the weighted aids, and the
initialisation of a fresh model); :func:`recipe_objective` builds it from a run's ``train.recipe_*`` / ``train.aux_*``
settings.

Sparse data (the ``cpu-recipe-sparse`` preset): fine-tune the dense-crop recipe model on synthetic sparse clips with
3-5 events each (``synthetic.DENSE_EVENT_PROBS``) with both aids still on. Measured (README, 20 min, standard sparse
test set): 30.0% top-1 / 60.0% within +-1 class on the test items that hold a cue (null ~5 / 14%), at the null on items
without a cue and with shuffled audio or video; the same run without the aids stays at chance.

Deviations: everything here is an addition (the official code has neither). ``time_anchored_init`` requires heads of
width d_model / n_head >= 2 and is defined for the three heads of :mod:`paperlib.model.sparsesync` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.engine.objectives import Batch, TrainingObjective, paper_loss
from paperlib.model.sparsesync import (
    AudioPositionalEmbedding,
    AvstDecHead,
    SparseSyncHead,
    TransformerHead,
    VisualPositionalEmbedding,
)

# ----------------------------------------------------------------------------------------------------------------------
# time codes


def time_code(times: torch.Tensor, channels: int, period_sec: float, amplitude: float = 1.0) -> torch.Tensor:
    """Sinusoidal code of ``times`` (s): pairs (cos, sin)(pi m t / period_sec), m = 1..channels // 2.

    The code's dot product ``code(t) . code(t')`` is a Dirichlet-like kernel of t - t' peaked at 0 (unique over one
    ``period_sec``); each channel has RMS ``amplitude`` over a period. An odd last channel is 0.
    Shapes: times (N,) -> (N, channels).
    """
    if channels < 2:
        raise ValueError(f"a time code needs >= 2 channels, got {channels}")
    m = torch.arange(1, channels // 2 + 1, dtype=torch.float64)
    ang = math.pi * times.double()[:, None] * m[None] / period_sec  # (N, M)
    code = torch.stack([ang.cos(), ang.sin()], dim=-1).flatten(1) * math.sqrt(2.0) * amplitude  # (N, 2M)
    if channels % 2:
        code = torch.cat([code, torch.zeros(len(times), 1, dtype=code.dtype)], dim=1)
    return code.float()


def cell_times(n: int, clip_sec: float) -> torch.Tensor:
    """Centre times (s) of ``n`` equal cells over a ``clip_sec`` window: (i + 0.5) * clip_sec / n."""
    return (torch.arange(n, dtype=torch.float64) + 0.5) * clip_sec / n


def visual_time_channels(d_model: int) -> slice:
    """Channels of the visual time table in the concatenated [time | width | height] layout."""
    return slice(0, d_model - 2 * (d_model // 3))


def audio_time_channels(d_model: int) -> slice:
    """Channels of the audio time table in the concatenated [freq | time] layout."""
    return slice(d_model - d_model // 2, d_model)


# ----------------------------------------------------------------------------------------------------------------------
# which head, and which parts of the recipe it has a counterpart for

HEAD_KINDS = (("sparsesync", SparseSyncHead), ("transformer", TransformerHead), ("avst_dec", AvstDecHead))

NOT_APPLICABLE: dict[str, dict[str, str]] = {
    "sparsesync": {},
    "transformer": {"selector_anchors": "no selectors: every token's time is its grid position"},
    "avst_dec": {"selector_anchors": "no selectors: every token's time is its grid position",
                 "modality_flag": "the matching attention (cross-attention from audio queries to visual keys) is "
                                  "cross-modal by construction, and the self-attention sees audio tokens only"},
}


def head_kind(head: nn.Module) -> str | None:
    """``"sparsesync"``, ``"transformer"`` or ``"avst_dec"`` for the model family's heads; None for anything else."""
    for kind, cls in HEAD_KINDS:
        if isinstance(head, cls):
            return kind
    return None


def anchored_parts(head: nn.Module, sync_passthrough: bool = True, modality_flag: float = 8.0,
                   sync_identity_qk: float = 1.0) -> dict[str, Any]:
    """What :func:`time_anchored_init` with these options does to ``head``: {"head": kind, "parts": [applied part
    names], "not_applicable": {part: why the head has no counterpart}} (the engine logs it)."""
    kind = head_kind(head)
    if kind is None:
        raise TypeError(f"the recipe knows no head of type {type(head).__name__}")
    skip = NOT_APPLICABLE[kind]
    parts = [name for name, on in (("time_codes", True), ("selector_anchors", True),
                                   ("passthrough", sync_passthrough), ("identity_qk", sync_identity_qk > 0),
                                   ("modality_flag", modality_flag > 0)) if on and name not in skip]
    return {"head": kind, "parts": parts, "not_applicable": dict(skip)}


# ----------------------------------------------------------------------------------------------------------------------
# time-anchored initialisation: shared pieces


def _check_head_width(d_model: int, n_head: int) -> None:
    if d_model // n_head < 2:
        raise ValueError(f"head width d_model / n_head = {d_model // n_head} is too small for time codes")


def _flag_channels(d_model: int, n_head: int) -> list[int]:
    """The modality-flag channel of every head: its last channel."""
    dh = d_model // n_head
    return [h * dh + dh - 1 for h in range(n_head)]


def _identity_value_output(attns: list[nn.Module]) -> None:
    """Value and output weights of each attention at the identity (what it reads reaches the residual at full
    strength instead of through two N(0, 0.02) matrices)."""
    for attn in {id(a): a for a in attns}.values():
        eye = torch.eye(attn.value.weight.shape[0])
        attn.value.weight.copy_(eye)
        attn.proj.weight.copy_(eye)


def _identity_qk(attn: nn.Module, scale: float) -> None:
    """Query = key = ``scale`` x identity: attention by content similarity."""
    d_eye = torch.eye(attn.query.weight.shape[0]) * scale
    attn.query.weight.copy_(d_eye)
    attn.key.weight.copy_(d_eye)


def _modality_flag(vis_norm: nn.LayerNorm, aud_norm: nn.LayerNorm, attn: nn.Module, strength: float) -> None:
    """The last channel of every head is +1 for visual and -1 for audio tokens (input LayerNorm gain 0, bias +-1);
    ``attn``'s query reads it with +g and its key with -g, so a same-modality pair (a token and itself included) gets
    -g^2 / sqrt(Dh) = -strength, a cross-modal pair +strength: tokens look at the other modality."""
    d = attn.query.weight.shape[0]
    dh = d // attn.n_head
    flags = _flag_channels(d, attn.n_head)
    for norm, sign in ((vis_norm, 1.0), (aud_norm, -1.0)):
        norm.weight[flags] = 0.0
        norm.bias[flags] = sign
    g = math.sqrt(strength * math.sqrt(dh))
    attn.query.weight[flags, :] = 0.0
    attn.key.weight[flags, :] = 0.0
    attn.query.weight[flags, flags] = g
    attn.key.weight[flags, flags] = -g


def _table_columns(pos: nn.Module) -> list[nn.Parameter]:
    """The per-axis tables of a positional module in the order they are concatenated along channels."""
    if isinstance(pos, VisualPositionalEmbedding):
        return [pos.time_embed, pos.width_embed, pos.height_embed]
    if isinstance(pos, AudioPositionalEmbedding):
        return [pos.freq_embed, pos.time_embed]
    raise TypeError(f"not a positional table module: {type(pos).__name__}")


def _zero_table_channels(pos: nn.Module, channels: list[int]) -> None:
    """Zero the given channels of a positional module's output (the columns of the tables that hold them)."""
    start = 0
    for table in _table_columns(pos):
        width = table.shape[1]
        local = [c - start for c in channels if start <= c < start + width]
        table[:, local] = 0.0
        start += width


def _write_time_code(table: nn.Parameter, first_channel: int, skip: list[int], clip_sec: float,
                     amplitude: float) -> None:
    """Time codes of the table's cells in its columns, except the output channels ``skip`` (left for the flag)."""
    keep = [c for c in range(table.shape[1]) if c + first_channel not in skip]
    if len(keep) < 2:
        raise ValueError(f"only {len(keep)} time channels are left for the time code beside the modality flags")
    table[:, keep] = time_code(cell_times(table.shape[0], clip_sec), len(keep), clip_sec, amplitude)


# ----------------------------------------------------------------------------------------------------------------------
# time-anchored initialisation of each head


def _head_read_matrix(d_model: int, n_head: int, channels: slice, scale: float) -> torch.Tensor:
    """(D, D) weight: every head's rows read the first ``head_dim`` channels of ``channels`` (identity) x scale."""
    dh = d_model // n_head
    src = list(range(d_model))[channels]
    w = torch.zeros(d_model, d_model)
    for h in range(n_head):
        for i, c in enumerate(src[:dh]):
            w[h * dh + i, c] = scale
    return w


def _anchor_selector(selector: nn.Module, context_codes: torch.Tensor, channels: slice, clip_sec: float,
                     n_head: int, peak_logit: float) -> None:
    """Selector queries = time codes of their cell times; first cross-attention reads the time channels."""
    k, d = selector.selectors.shape
    code_ch = channels.stop - channels.start
    sel = torch.zeros(k, d)
    sel[:, channels] = time_code(cell_times(k, clip_sec), code_ch, clip_sec)
    selector.selectors.copy_(sel)
    selector.selectors_pos.zero_()
    block = selector.blocks[0]
    # calibrate the query/key scale: the code part of the logits, max over time minus median, equals peak_logit
    q_in = F.layer_norm(sel, (d,))  # LN2 at init is the plain layer norm
    read = _head_read_matrix(d, n_head, channels, 1.0)
    dh = d // n_head
    q = (q_in @ read.T).view(k, n_head, dh)[:, 0]  # (k, dh): head 0
    kk = (context_codes @ read.T).view(-1, n_head, dh)[:, 0]  # (T, dh)
    logits = q @ kk.T / math.sqrt(dh)  # (k, T) at scale 1
    spread = float((logits.max(dim=1).values - logits.median(dim=1).values).mean())
    beta = math.sqrt(peak_logit / max(spread, 1e-6))
    xattn = block.xattn
    xattn.query.weight.copy_(_head_read_matrix(d, n_head, channels, beta))
    xattn.key.weight.copy_(_head_read_matrix(d, n_head, channels, beta))
    xattn.value.weight.copy_(torch.eye(d))
    xattn.proj.weight.copy_(torch.eye(d))
    for lin in (xattn.query, xattn.key, xattn.value, xattn.proj):
        lin.bias.zero_()


def _anchor_sparsesync(head: SparseSyncHead, clip_sec: float, code_amplitude: float, selector_peak_logit: float,
                       sync_passthrough: bool, modality_flag: float, sync_identity_qk: float,
                       sync_code_gain: float) -> None:
    d = head.vis_norm.normalized_shape[0]
    attn0 = head.sync.blocks[0].attn
    n_head = attn0.n_head
    _check_head_width(d, n_head)
    t_v = head.vis_pos.grid[0]
    t_a = head.aud_pos.grid[1]
    vch, ach = visual_time_channels(d), audio_time_channels(d)
    head.vis_pos.time_embed.copy_(time_code(cell_times(t_v, clip_sec), vch.stop - vch.start, clip_sec, code_amplitude))
    head.aud_pos.time_embed.copy_(time_code(cell_times(t_a, clip_sec), ach.stop - ach.start, clip_sec, code_amplitude))
    v_codes = torch.zeros(t_v, d)
    v_codes[:, vch] = head.vis_pos.time_embed
    a_codes = torch.zeros(t_a, d)
    a_codes[:, ach] = head.aud_pos.time_embed
    _anchor_selector(head.v_selector, v_codes, vch, clip_sec, n_head, selector_peak_logit)
    _anchor_selector(head.a_selector, a_codes, ach, clip_sec, n_head, selector_peak_logit)
    if sync_passthrough:
        _identity_value_output([attn0, head.sync.blocks[-1].attn])
    if sync_identity_qk > 0:
        # a visual token attends to the audio tokens whose (LayerNorm'd) content is most similar, which is what the
        # auxiliary cross-correlation loss makes matching moments; the time codes are damped at the sync input (gain
        # ``sync_code_gain`` on each modality's own code channels) so they ride along in the values but do not
        # dominate the comparison
        _identity_qk(attn0, sync_identity_qk)
        head.sync.vis_norm.weight[vch] = sync_code_gain
        head.sync.aud_norm.weight[ach] = sync_code_gain
    if modality_flag > 0:
        _modality_flag(head.sync.vis_norm, head.sync.aud_norm, attn0, modality_flag)


def _anchor_transformer(head: TransformerHead, clip_sec: float, code_amplitude: float, sync_passthrough: bool,
                        modality_flag: float, sync_identity_qk: float, sync_code_gain: float) -> None:
    d = head.vis_norm.normalized_shape[0]
    attn0 = head.blocks[0].attn
    _check_head_width(d, attn0.n_head)
    flags = _flag_channels(d, attn0.n_head) if modality_flag > 0 else []
    # no LayerNorm sits between the tables and the first block: the codes' amplitude is their damping
    amplitude = code_amplitude * (sync_code_gain if sync_identity_qk > 0 else 1.0)
    _write_time_code(head.vis_pos.time_embed, visual_time_channels(d).start, flags, clip_sec, amplitude)
    _write_time_code(head.aud_pos.time_embed, audio_time_channels(d).start, flags, clip_sec, amplitude)
    if sync_passthrough:
        _identity_value_output([attn0, head.blocks[-1].attn])
    if sync_identity_qk > 0:
        _identity_qk(attn0, sync_identity_qk)
    if flags:
        # the flag is the input LayerNorms' bias alone: the positional tables hold 0 in its channels
        _zero_table_channels(head.vis_pos, flags)
        _zero_table_channels(head.aud_pos, flags)
        _modality_flag(head.vis_norm, head.aud_norm, attn0, modality_flag)


def _anchor_avst_dec(head: AvstDecHead, clip_sec: float, code_amplitude: float, sync_passthrough: bool,
                     sync_identity_qk: float, sync_code_gain: float) -> None:
    d = head.vis_norm.normalized_shape[0]
    xattn0 = head.blocks[0].xattn
    _check_head_width(d, xattn0.n_head)
    amplitude = code_amplitude * (sync_code_gain if sync_identity_qk > 0 else 1.0)
    vch, ach = visual_time_channels(d), audio_time_channels(d)
    head.vis_pos.time_embed.copy_(time_code(cell_times(head.vis_pos.grid[0], clip_sec), vch.stop - vch.start,
                                            clip_sec, amplitude))
    # the audio codes take the audio table's time channels, disjoint from the visual ones: the identity comparison
    # never compares a visual code with an audio code (which would pull every match towards offset 0)
    head.aud_time_pos[:, ach] = time_code(cell_times(head.aud_grid[1], clip_sec), ach.stop - ach.start, clip_sec,
                                          amplitude)
    if sync_passthrough:
        # what an audio time picks from the video (first cross-attention), and OFF's read-out of the audio tokens that
        # hold it (last self-attention)
        _identity_value_output([xattn0, head.blocks[-1].attn])
    if sync_identity_qk > 0:
        _identity_qk(xattn0, sync_identity_qk)


@torch.no_grad()
def time_anchored_init(head: nn.Module, clip_sec: float, code_amplitude: float = 1.0, selector_peak_logit: float = 6.0,
                       sync_passthrough: bool = True, modality_flag: float = 8.0, sync_identity_qk: float = 1.0,
                       sync_code_gain: float = 0.5) -> nn.Module:
    """Initialise a fresh head of the model family with the recipe's parts that its architecture has (see the
    module docstring; :func:`anchored_parts` lists them). Changes initial values only, never the architecture.

    Args:
        head: the model's ``.head``, freshly built: ``SparseSyncHead``, ``TransformerHead`` or ``AvstDecHead``.
        clip_sec: the window length (s) the positional tables cover (``Geometry.clip_sec``).
        code_amplitude: RMS per channel of the sinusoidal time codes (LayerNorm'd features have RMS 1).
        selector_peak_logit: how peaked each selector's attention over time is (logit of its own time minus the
            median); SparseSync only.
        sync_passthrough: also start the value/output weights of the first attention that matches the modalities and
            of the last block's attention at the identity, so what a token picks from the other modality, and OFF's
            average of the tokens, reach the classifier at full strength instead of through two N(0, 0.02) matrices.
        modality_flag: > 0 adds this logit bonus to cross-modal pairs in the first block's self-attention (and the
            same penalty to same-modality pairs) through one flag channel per head; 0: off. Not for AVST_dec, whose
            matching attention is cross-modal by construction.
        sync_identity_qk: > 0 sets the first matching attention's query and key weights to this multiple of the
            identity (content-similarity attention; pair it with the auxiliary cross-correlation loss, which makes
            matching visual and audio features similar); 0: keep them.
        sync_code_gain: with ``sync_identity_qk``, the damping of the time codes where the first block compares
            content: the sync input LayerNorm gain on the code channels (SparseSync), the codes' amplitude factor
            (the other heads, which have no LayerNorm between the tables and that block).

    Returns: ``head`` (modified in place).
    """
    kind = head_kind(head)
    if kind == "sparsesync":
        _anchor_sparsesync(head, clip_sec, code_amplitude, selector_peak_logit, sync_passthrough, modality_flag,
                           sync_identity_qk, sync_code_gain)
    elif kind == "transformer":
        _anchor_transformer(head, clip_sec, code_amplitude, sync_passthrough, modality_flag, sync_identity_qk,
                            sync_code_gain)
    elif kind == "avst_dec":
        _anchor_avst_dec(head, clip_sec, code_amplitude, sync_passthrough, sync_identity_qk, sync_code_gain)
    else:
        raise TypeError("time_anchored_init needs a SparseSyncHead, TransformerHead or AvstDecHead; got "
                        f"{type(head).__name__}")
    return head


# ----------------------------------------------------------------------------------------------------------------------
# the first matching attention of each head, and the matching loss on it


@dataclass
class MatchView:
    """The first attention that matches the two modalities: queries of one modality, keys of the other, and the time
    cell of each (what :func:`match_loss` reads).

    Shapes: q (B, heads, Nq, Dh), k (B, heads, Nk, Dh); q_cell (Nq,), k_cell (Nk,) long: cell index among
    ``n_q_cells`` / ``n_k_cells`` equal cells of the window. ``visual_queries``: True when the queries are visual and
    the keys audio, False for the reverse.
    """

    q: torch.Tensor
    k: torch.Tensor
    q_cell: torch.Tensor
    n_q_cells: int
    k_cell: torch.Tensor
    n_k_cells: int
    visual_queries: bool


def _split_heads(lin: nn.Linear, x: torch.Tensor, n_head: int) -> torch.Tensor:
    b, n, d = x.shape
    return lin(x).view(b, n, n_head, d // n_head).transpose(1, 2)  # (B, h, N, Dh)


def sparsesync_parts(head: nn.Module, vis: torch.Tensor, aud: torch.Tensor) -> dict[str, torch.Tensor]:
    """``SparseSyncHead.forward`` step by step (same maths): the logits plus what the auxiliary losses read.

    Returns {"logits" (B, C), "v_sel" (B, k, D), "a_sel" (B, k, D), "q" (B, heads, 2k + 2, Dh), "k" (same)}: the
    first sync block's queries and keys of the token sequence [OFF; k visual; MOD; k audio].
    """
    v, a = head.embed(vis, aud)
    v_sel, _ = head.v_selector(v)  # (B, k, D)
    a_sel, _ = head.a_selector(a)  # (B, k, D)
    sync = head.sync
    b = v_sel.shape[0]
    x = torch.cat([sync.off_token.expand(b, -1, -1), sync.vis_norm(v_sel), sync.mod_token.expand(b, -1, -1),
                   sync.aud_norm(a_sel)], dim=1)  # (B, 2k + 2, D): the sequence SyncTransformer.forward builds
    attn = sync.blocks[0].attn
    ln = sync.blocks[0].ln1(sync.drop(x))
    q = _split_heads(attn.query, ln, attn.n_head)  # (B, h, N, Dh)
    k = _split_heads(attn.key, ln, attn.n_head)  # (B, h, N, Dh)
    out, _ = sync(v_sel, a_sel)
    return {"logits": head.classifier(out[:, 0]), "v_sel": v_sel, "a_sel": a_sel, "q": q, "k": k}


def _sparsesync_view(q: torch.Tensor, k: torch.Tensor, n_v: int, n_a: int) -> MatchView:
    """The visual-query / audio-key part of the sync sequence [OFF; n_v visual; MOD; n_a audio] (anchored selector
    s of n sits at cell s)."""
    return MatchView(q[:, :, 1:1 + n_v], k[:, :, 2 + n_v:2 + n_v + n_a], torch.arange(n_v, device=q.device), n_v,
                     torch.arange(n_a, device=q.device), n_a, True)


def _transformer_parts(head: TransformerHead, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, MatchView]:
    (t, hh, ww), (f, ta) = vis.shape[1:4], aud.shape[1:3]
    v, a = head.embed(vis, aud)  # (B, t*h*w, D), (B, f*ta, D)
    b, n_v = v.shape[:2]
    x = head.drop(torch.cat([head.off_token.expand(b, -1, -1), v, head.mod_token.expand(b, -1, -1), a], dim=1))
    attn = head.blocks[0].attn
    ln = head.blocks[0].ln1(x)
    q = _split_heads(attn.query, ln, attn.n_head)  # (B, h, N, Dh)
    k = _split_heads(attn.key, ln, attn.n_head)  # (B, h, N, Dh)
    for block in head.blocks:  # TransformerHead.forward from here
        x, _ = block(x)
    logits = head.classifier(head.ln_f(x)[:, 0])  # (B, C)
    dev = vis.device
    view = MatchView(q[:, :, 1:1 + n_v], k[:, :, 2 + n_v:],
                     torch.arange(t, device=dev).repeat_interleave(hh * ww), t,  # visual tokens in t,h,w order
                     torch.arange(ta, device=dev).repeat(f), ta, True)  # audio tokens in f,ta order
    return logits, view


def _avst_dec_parts(head: AvstDecHead, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, MatchView]:
    if tuple(aud.shape[1:3]) != head.aud_grid:
        raise ValueError(f"audio features have grid {tuple(aud.shape[1:3])} but the head was built for "
                         f"{head.aud_grid}")
    t, hh, ww = vis.shape[1:4]
    b = vis.shape[0]
    v = (head.vis_norm(vis) + head.vis_pos(vis.shape[1:4])).flatten(1, 3)  # (B, t*h*w, D)
    a = head.aud_norm(aud.mean(dim=1)) + head.aud_time_pos  # (B, ta, D): pooled over frequency
    x = head.query_drop(torch.cat([head.off_token.expand(b, -1, -1), a], dim=1))  # (B, 1 + ta, D)
    ctx = head.context_drop(v)  # AvstDecHead.forward up to here
    b0 = head.blocks[0]  # CrossBlock.forward, with the cross-attention's query and key kept
    y, _ = b0.attn(b0.ln1(x))
    x = x + y
    x_in = b0.ln2(x)
    q = _split_heads(b0.xattn.query, x_in, b0.xattn.n_head)  # (B, h, 1 + ta, Dh)
    k = _split_heads(b0.xattn.key, ctx, b0.xattn.n_head)  # (B, h, t*h*w, Dh)
    y, _ = b0.xattn(x_in, ctx)
    x = x + y
    x = x + b0.mlp(b0.ln3(x))
    for block in head.blocks[1:]:
        x, _ = block(x, ctx)
    logits = head.classifier(head.ln_f(x)[:, 0])  # (B, C)
    ta = a.shape[1]
    dev = vis.device
    view = MatchView(q[:, :, 1:], k, torch.arange(ta, device=dev), ta,
                     torch.arange(t, device=dev).repeat_interleave(hh * ww), t, False)  # visual keys in t,h,w order
    return logits, view


def recipe_parts(head: nn.Module, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, MatchView]:
    """The head's forward (same maths, same logits as ``head(vis, aud)``) plus its first matching attention.

    SparseSync: the first sync block, visual selectors querying audio selectors. Transformer: the first block,
    t*h*w visual tokens querying f*ta audio tokens. AVST_dec: the first block's cross-attention, ta audio times
    querying t*h*w visual tokens. Shapes: vis (B, t, h, w, D), aud (B, f, ta, D) -> logits (B, C), view.
    """
    kind = head_kind(head)
    if kind == "sparsesync":
        parts = sparsesync_parts(head, vis, aud)
        return parts["logits"], _sparsesync_view(parts["q"], parts["k"], parts["v_sel"].shape[1],
                                                 parts["a_sel"].shape[1])
    if kind == "transformer":
        return _transformer_parts(head, vis, aud)
    if kind == "avst_dec":
        return _avst_dec_parts(head, vis, aud)
    raise TypeError(f"the matching loss needs a SparseSyncHead, TransformerHead or AvstDecHead; got "
                    f"{type(head).__name__}")


def match_loss(view: MatchView, clip_sec: float, offset_sec: torch.Tensor,
               width_sec: float | None = None) -> torch.Tensor:
    """Auxiliary attention-matching loss on a head's first matching attention (a training aid).

    Visual time tv and audio time ta show the same moment when ta = tv - o (the audio window starts o later). For
    each query whose moment lies inside the other modality's window, the softmax of its logits over the keys should
    put its mass on the keys of that moment: cross-entropy against a Gaussian in key time (std ``width_sec``, default
    one key cell), normalised over all keys (keys that share a time share its mass), mean over heads and valid rows.

    Shapes: view.q (B, heads, Nq, Dh), view.k (B, heads, Nk, Dh); offset_sec (B,) -> scalar.
    """
    q, k = view.q, view.k
    if width_sec is None:
        width_sec = clip_sec / view.n_k_cells
    tq = cell_times(view.n_q_cells, clip_sec).to(q)[view.q_cell]  # (Nq,)
    tk = cell_times(view.n_k_cells, clip_sec).to(q)[view.k_cell]  # (Nk,)
    off = offset_sec.to(q)[:, None]  # (B, 1)
    centre = tq[None, :] - off if view.visual_queries else tq[None, :] + off  # (B, Nq): the key time to find
    valid = (centre >= 0) & (centre < clip_sec)  # (B, Nq)
    target = torch.exp(-0.5 * ((tk[None, None, :] - centre[:, :, None]) / width_sec) ** 2)  # (B, Nq, Nk)
    target = target / target.sum(-1, keepdim=True).clamp(min=1e-12)
    logp = torch.log_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # (B, h, Nq, Nk)
    ce = -(target[:, None] * logp).sum(-1).mean(1)  # (B, Nq)
    return torch.where(valid, ce, torch.zeros_like(ce)).sum() / valid.sum().clamp(min=1)


def sync_match_loss(q: torch.Tensor, k: torch.Tensor, n_v: int, n_a: int, clip_sec: float, offset_sec: torch.Tensor,
                    width_sec: float | None = None) -> torch.Tensor:
    """:func:`match_loss` on the first sync block of a time-anchored SparseSync head (``sparsesync_parts``' q, k).

    For each visual token s (time tv_s) whose moment lies inside the audio window (tv_s - o in [0, L)), the softmax
    of its logits over the audio tokens should put its mass on the audio tokens of the same moment (ta_r = tv_s - o).

    Shapes: q, k (B, heads, 2 + n_v + n_a, Dh) in the order [OFF; visual; MOD; audio]; offset_sec (B,) -> scalar.
    """
    return match_loss(_sparsesync_view(q, k, n_v, n_a), clip_sec, offset_sec, width_sec)


def lag_kernel(n_v: int, n_a: int, clip_sec: float, offsets_sec: torch.Tensor, width_sec: float) -> torch.Tensor:
    """(C, n_v, n_a) weights: how well visual cell i and audio cell j match under each class offset.

    Visual cell time tv and audio cell time ta show the same source moment when tv - ta = offset (the audio window
    starts ``offset`` later). Gaussian in (tv - ta - offset) with std ``width_sec``; each class's kernel sums to 1.
    """
    tv = cell_times(n_v, clip_sec)
    ta = cell_times(n_a, clip_sec)
    diff = tv[:, None] - ta[None, :]  # (n_v, n_a)
    k = torch.exp(-0.5 * ((diff[None] - offsets_sec.double()[:, None, None]) / width_sec) ** 2)  # (C, n_v, n_a)
    return (k / k.sum(dim=(1, 2), keepdim=True)).float()


def xcorr_logits(vis: torch.Tensor, aud: torch.Tensor, clip_sec: float, offsets_sec: torch.Tensor,
                 temperature: float = 0.1, width_sec: float | None = None) -> torch.Tensor:
    """Parameter-free cross-correlation logits over the offset classes (the auxiliary head; not part of the model).

    Args:
        vis: bridge output (B, t, h, w, D); aud: bridge output (B, f, ta, D) (``SyncModel.features``).
        clip_sec: window length (s); offsets_sec: (C,) class offsets (s), e.g. ``Geometry.grid()``.
        temperature: cosine similarities are divided by it.
        width_sec: lag-kernel std (s); default one grid step.

    Returns: (B, C) logits: for each class the kernel-weighted mean cosine similarity of visual and audio times.
    """
    offsets_sec = torch.as_tensor(offsets_sec, dtype=torch.float64)
    if width_sec is None:
        width_sec = float((offsets_sec[1:] - offsets_sec[:-1]).abs().min()) if len(offsets_sec) > 1 else 0.2
    v = F.layer_norm(vis, vis.shape[-1:]).mean(dim=(2, 3))  # (B, t, D): pooled over space
    a = F.layer_norm(aud, aud.shape[-1:]).mean(dim=1)  # (B, ta, D): pooled over frequency
    v = v - v.mean(dim=1, keepdim=True)  # what changes over time carries the sync
    a = a - a.mean(dim=1, keepdim=True)
    sim = F.normalize(v, dim=-1) @ F.normalize(a, dim=-1).transpose(1, 2)  # (B, t, ta)
    kern = lag_kernel(v.shape[1], a.shape[1], clip_sec, offsets_sec, width_sec).to(sim)  # (C, t, ta)
    return torch.einsum("bij,cij->bc", sim, kern) / temperature  # (B, C)


def aux_weight(step: int, weight: float = 1.0, hold_steps: int = 300, decay_steps: int = 300) -> float:
    """Weight of an auxiliary loss at ``step``: ``weight`` for ``hold_steps``, then linear to 0 over ``decay_steps``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < hold_steps:
        return weight
    if decay_steps <= 0:
        return 0.0
    return weight * max(0.0, 1.0 - (step - hold_steps) / decay_steps)


# ----------------------------------------------------------------------------------------------------------------------
# the training step's view: model + auxiliary losses


class AuxLossModel(nn.Module):
    """Wrap a ``SyncModel`` for training with the auxiliary losses (the wrapped model is unchanged and is what one
    saves; under DDP, wrap the module that calls this one, e.g. :class:`RecipeObjective`, so the auxiliary gradients
    are synchronised too).

    ``forward(video, audio, target, step) -> (logits, aux_total, terms)``: ``logits`` are the paper head's (identical to
    ``model(video, audio)``), ``aux_total`` the weighted sum of the auxiliary losses at ``step`` (a 0-dim tensor, 0
    when both weights are 0 at this step) and ``terms`` the unweighted values ({"xcorr", "match"}: detached 0-dim
    tensors, or absent; read them with ``float()`` only when logging, which avoids a host sync per step on a GPU).

    Args:
        model: ``paperlib.model.sparsesync.SyncModel``.
        clip_sec: window length (s); offsets_sec: (C,) class offsets (s) (``paperlib.core.geometry.Geometry.grid``).
        xcorr_weight / match_weight: weights of :func:`xcorr_logits` cross-entropy and of :func:`match_loss` on the
            head's first matching attention (:func:`recipe_parts`; a SparseSync head needs time-anchored selectors
            for it to mean anything, the other heads' tokens have their grid times).
        hold_steps / decay_steps: both weights follow :func:`aux_weight` (constant, then linear to 0).
    """

    def __init__(self, model: nn.Module, clip_sec: float, offsets_sec: torch.Tensor, xcorr_weight: float = 1.0,
                 match_weight: float = 1.0, hold_steps: int = 10**9, decay_steps: int = 0) -> None:
        super().__init__()
        self.model = model
        self.clip_sec = clip_sec
        self.register_buffer("offsets_sec", torch.as_tensor(offsets_sec, dtype=torch.float32), persistent=False)
        self.xcorr_weight, self.match_weight = xcorr_weight, match_weight
        self.hold_steps, self.decay_steps = hold_steps, decay_steps
        if match_weight > 0 and head_kind(model.head) is None:
            raise TypeError("match_weight > 0 needs a SparseSyncHead, TransformerHead or AvstDecHead; got "
                            f"{type(model.head).__name__}")

    def forward(self, video: torch.Tensor, audio: torch.Tensor, target: torch.Tensor, step: int
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        w_x = aux_weight(step, self.xcorr_weight, self.hold_steps, self.decay_steps) if self.xcorr_weight > 0 else 0.0
        w_m = aux_weight(step, self.match_weight, self.hold_steps, self.decay_steps) if self.match_weight > 0 else 0.0
        vis, aud = self.model.features(video, audio)
        terms: dict[str, torch.Tensor] = {}
        total = vis.new_zeros(())
        if w_m > 0:
            logits, view = recipe_parts(self.model.head, vis, aud)
            match = match_loss(view, self.clip_sec, self.offsets_sec[target])
            total = total + w_m * match
            terms["match"] = match.detach()
        else:
            logits = self.model.head(vis, aud)
        if w_x > 0:
            xc = F.cross_entropy(xcorr_logits(vis, aud, self.clip_sec, self.offsets_sec), target)
            total = total + w_x * xc
            terms["xcorr"] = xc.detach()
        return logits, total, terms


# ----------------------------------------------------------------------------------------------------------------------
# the recipe as a training objective


class RecipeObjective(TrainingObjective):
    """The recipe's training objective (:mod:`paperlib.engine.objectives`): the paper's cross-entropy plus the
    auxiliary losses of :class:`AuxLossModel` at the step's weights (:func:`aux_weight`: hold, then linear to 0).

    ``logs``: ``loss`` is the paper's cross-entropy (what the plateau detector and validation see) and ``aux_loss`` the
    weighted sum of the auxiliary terms; the model the engine saves stays the paper's. Without auxiliary weights
    (``aux`` None) the objective is the paper's alone. ``anchor`` (keyword arguments of :func:`time_anchored_init`),
    when given, is what :meth:`initialise` applies to a fresh head (the parts its architecture has; the log names
    them, and those that do not apply with the reason); a head outside the model family is left as built and the log
    says why.

    The auxiliary terms are read with ``float()`` only when the engine logs; the recipe is meant for CPU-sized runs.
    """

    def __init__(self, model: nn.Module, clip_sec: float, offsets_sec: torch.Tensor, *, variant: str = "sparsesync",
                 anchor: dict[str, Any] | None = None, xcorr_weight: float = 0.0, match_weight: float = 0.0,
                 hold_steps: int = 10**9, decay_steps: int = 0) -> None:
        super().__init__(model)
        self.clip_sec, self.variant, self.anchor = clip_sec, variant, anchor
        self.aux = None
        if xcorr_weight > 0 or match_weight > 0:
            self.aux = AuxLossModel(model, clip_sec, offsets_sec, xcorr_weight=xcorr_weight, match_weight=match_weight,
                                    hold_steps=hold_steps, decay_steps=decay_steps)

    def forward(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        video, audio, target = batch["video"], batch["audio"], batch["target"]
        if self.aux is None:
            loss = paper_loss(self.model(video, audio), target)
            return loss, {"loss": loss.detach()}
        logits, aux, terms = self.aux(video, audio, target, step)  # logits: the paper head's; aux: weighted sum
        loss = paper_loss(logits, target)
        # each unweighted term too: the heads' matching losses have different floors (the entropy of their targets:
        # ~1.4 nats for SparseSync's selectors, ~3.6 for the transformer's and AVST_dec's, whose targets spread over 9
        # frequency rows or spatial cells), so the weighted sum alone cannot tell a stalled term from one at its floor
        return loss + aux.float(), {"loss": loss.detach(), "aux_loss": aux.detach(),
                                    **{f"aux_{k}": v for k, v in terms.items()}}

    def initialise(self) -> dict[str, Any] | None:
        if self.anchor is None:
            return None
        head = self.model.head
        if head_kind(head) is None:
            applied: dict[str, Any] = {"time_anchored_init": False, "reason": f"variant {self.variant!r}: the recipe "
                                       f"knows no head of type {type(head).__name__}"}
        else:
            time_anchored_init(head, self.clip_sec, sync_passthrough=True, **self.anchor)
            which = {k: self.anchor[k] for k in ("modality_flag", "sync_identity_qk") if k in self.anchor}
            applied = {"time_anchored_init": True, **anchored_parts(head, sync_passthrough=True, **which),
                       **self.anchor}
        return {"event": "recipe_init", "applied": applied}

    def start_event(self) -> dict[str, Any] | None:
        if self.aux is None:
            return None
        return {"event": "aux_losses", "xcorr": self.aux.xcorr_weight, "match": self.aux.match_weight,
                "hold_steps": self.aux.hold_steps, "decay_steps": self.aux.decay_steps}


def recipe_objective(model: nn.Module, cfg: Any) -> RecipeObjective | None:
    """The recipe objective a run configuration asks for (``train.recipe_init``, ``train.aux_*_weight``), or None when
    it asks for none. The matching loss applies to every head of the model family; a SparseSync head needs its
    selectors time-anchored for it (their times come from the anchoring), so there it is on only with
    ``recipe_init``."""
    tc = cfg.train
    if not tc.recipe_init and tc.aux_xcorr_weight <= 0 and tc.aux_match_weight <= 0:
        return None  # the paper's objective; the model may be any module (tests pass their own)
    needs_anchor = head_kind(getattr(model, "head", None)) == "sparsesync"
    match = tc.aux_match_weight if (tc.recipe_init or not needs_anchor) else 0.0
    if not tc.recipe_init and tc.aux_xcorr_weight <= 0 and match <= 0:
        return None
    anchor = None
    if tc.recipe_init:
        anchor = {"modality_flag": tc.recipe_modality_flag, "sync_identity_qk": tc.recipe_sync_identity_qk,
                  "sync_code_gain": tc.recipe_sync_code_gain}
    grid = torch.as_tensor(cfg.geometry.grid(), dtype=torch.float32)
    return RecipeObjective(model, cfg.geometry.clip_sec, grid, variant=cfg.model.variant, anchor=anchor,
                           xcorr_weight=tc.aux_xcorr_weight, match_weight=match,
                           hold_steps=tc.aux_hold_steps, decay_steps=tc.aux_decay_steps)
