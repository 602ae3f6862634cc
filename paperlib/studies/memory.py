"""Peak training memory of the synchronisation head vs input duration (paper Sec. 5.2, Fig. 4).

The paper argues for selectors by memory: the no-selector transformer attends over all t*h*w + f*t feature tokens, so
its footprint grows quadratically with the clip length, while the selectors cross-attend from a fixed number of queries
and grow linearly. Fig. 4 plots the peak training memory of both, *feature extractors excluded*. The authors released no
code for it (v-iashin/SparseSync), so this module defines the measurement:

- **What is measured**: one training step of the part after the bridge (``paperlib.model.sparsesync.build_head``) on
  random features of the token grids that an ``s``-second clip gives at the paper's geometry (``token_grid``), batch 10,
  paper width/depth: ``zero_grad(set_to_none) -> forward -> cross-entropy -> backward -> clip_grad_norm_(1) -> Adam.step
  (foreach)``, as the official loop (v-iashin/SparseSync) without the GradScaler (a few scalars; leaving
  it out keeps the step identical on every device and avoids skipped steps on overflow). The peak is that of a
  steady-state step: Adam's state already exists (CUDA and the exact CPU count run a warm-up step; the estimate creates
  the state a warm-up step leaves). Parameters, gradients, Adam state, inputs and activations all count, as in
  ``torch.cuda.max_memory_allocated``.
- **On CUDA** (``measure_cuda_peak``): ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
- **Without a GPU** (``estimate_peak``): the same step runs on the ``meta`` device (shapes only, nothing allocated)
  under ``StorageTracker``, a ``TorchDispatchMode`` that adds the bytes of every new storage an ATen op returns and
  subtracts them when the storage dies (weakref callback); the running maximum is the peak. Storages are rounded up to
  the CUDA caching allocator's 512-byte blocks, and ``CUDA_OVERHEAD_BYTES`` (two 32 MiB cuBLAS workspaces, measured) is
  added by ``memory_sweep``/``compare_with_cuda``. Blind spots: scratch a kernel allocates and frees inside itself (the
  memory-efficient attention backward's accumulators, the math path's softmax/matmul scratch) and fragmentation.
- **CUDA semantics off CUDA** (``_StepEmulation``, a ``TorchFunctionMode``, i.e. above autograd so that what autograd
  saves is what CUDA saves): (a) ``precision="amp"``: the official code trains under ``torch.autocast('cuda',
  float16)``, which has no meta counterpart; the arguments of the functions on autocast's float16 list (linear, matmul,
  bmm, conv, SDPA, ...) are cast to float16 and those on its float32 list (layer_norm, softmax, cross_entropy, exp, sum,
  ...) to float32, parameter casts cached for the forward pass as autocast does; (b) dropout: CUDA runs the fused
  ``native_dropout`` (1-byte mask saved for backward) where other devices draw float noise (4 bytes saved); (c) the
  attention kernel (below).
- **Attention implementation** (the third curve): ``attention="efficient"`` is the memory-efficient SDPA kernel (CUDA:
  ``sdpa_kernel(EFFICIENT_ATTENTION)``; meta: ``aten._scaled_dot_product_efficient_attention``, which saves only the
  output and the log-sum-exp); ``attention="explicit"`` is the math backend, which materialises the (B, heads, Nq, Nk)
  softmax weights (in float32, also under AMP), the dropout mask and the dropped weights, as explicit attention code and
  torch 1.11 (the authors') do. The head must call ``F.scaled_dot_product_attention`` in its default path for the two to
  differ; ``memory_sweep`` warns when they come out identical.

Validation. (1) Without a GPU (``exact_cpu_peak``): the same step on real CPU tensors under the torch profiler, whose
allocation events are the CPU allocator's own record; with ``emulate_cuda=False`` (fp32, explicit attention) the meta
estimate agrees within 0.04 % (tests/test_memory.py), and shape-only execution of the emulated step allocates op by op
what real execution of it allocates. (2) On an H200 (torch 2.11, ``compare_with_cuda``, both models, both attention
paths, fp32 and amp, 2-20 s): the dispatch-level count over real CUDA kernels equals the meta estimate exactly; against
``max_memory_allocated`` the estimate is low by 0.5-8 % (median 3.3 %), the gap growing with the no-selector model's
explicit attention (kernel-internal scratch).

GPU capacities (``GPU_CAPACITY_GIB``) are the totals ``nvidia-smi`` shows for a 32 GB V100 (32,510 MiB) and an 80 GB
H100 (81,559 MiB); neither the CUDA context nor the feature extractors are in the curves, so break points are
optimistic.
Deviation from the paper: none known (its plot has no stated batch, precision or attention code; we use batch 10 and the
official AMP setting by default and show both attention implementations).
"""

from __future__ import annotations

import gc
import math
import time
import warnings
import weakref
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

GIB = 2**30
MIB = 2**20
CUDA_BLOCK_BYTES = 512  # the CUDA caching allocator rounds every block up to a multiple of 512 bytes
# cuBLAS workspaces that CUDA allocates through the caching allocator but no op returns: one per cuBLAS handle, i.e.
# one for the forward thread and one for autograd's backward thread; 32 MiB each, measured on an H200 (torch 2.11)
CUDA_OVERHEAD_BYTES = 2 * 32 * 2**20
GPU_CAPACITY_GIB: dict[str, float] = {"V100 32GB": 32510 / 1024, "H100 80GB": 81559 / 1024}
PAPER_SECONDS: tuple[int, ...] = tuple(range(2, 31))
VARIANT_LABELS = {"sparsesync": "selectors", "transformer": "no selectors", "avst_dec": "AVST_dec"}
PRECISIONS = ("fp32", "amp")
ATTENTIONS = ("efficient", "explicit")


# ----------------------------------------------------------------------------------------------------------------------
# Counting live tensor storages
# ----------------------------------------------------------------------------------------------------------------------
def _round_up(n: int, block: int) -> int:
    return 0 if n == 0 else int(math.ceil(n / block) * block)


class StorageTracker(TorchDispatchMode):
    """Running and peak bytes of the tensor storages created by ATen ops inside the mode, on one device type.

    A storage counts from the op that returns it until its last reference dies (weakref callback), so views, in-place
    ops and tensors kept alive by autograd are handled by Python's own reference counting. Storages that already
    existed (parameters, inputs) are counted only if passed to ``track``; an output that shares storage with an op
    input is never counted as new. Works on real tensors and on ``meta`` tensors (shape-only execution) alike.

    Args:
        device_type: only storages on this device type count ("meta", "cpu", "cuda").
        block: round every storage up to a multiple of this many bytes (512 mimics the CUDA caching allocator).
        record: keep (op name, live bytes after the op) in ``timeline``.
    """

    def __init__(self, device_type: str, block: int = 1, record: bool = False) -> None:
        super().__init__()
        self.device_type = device_type
        self.block = block
        self.current = 0
        self.peak = 0
        self.record = record
        self.timeline: list[tuple[str, int]] = []  # (op, live bytes after it) when ``record``
        self._live: dict[int, weakref.ref] = {}

    def _add_storage(self, st: torch.UntypedStorage) -> None:
        key = st._cdata
        if key in self._live or st.device.type != self.device_type:
            return
        nbytes = _round_up(st.nbytes(), self.block)
        self.current += nbytes
        self.peak = max(self.peak, self.current)

        def _freed(_ref: weakref.ref, key: int = key, nbytes: int = nbytes) -> None:
            if self._live.pop(key, None) is not None:
                self.current -= nbytes

        self._live[key] = weakref.ref(st, _freed)

    def track(self, tensors: Iterable[torch.Tensor]) -> None:
        """Count tensors that were created outside the mode (parameters, inputs) as live from now on."""
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self._add_storage(t.untyped_storage())

    def reset_peak(self) -> None:
        self.peak = self.current

    @property
    def live_storages(self) -> int:
        return len(self._live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs: set[int] | None = None  # storages of the op's inputs, computed only when an output is not yet known
        for t in _tensors(out):
            st = t.untyped_storage()
            key = st._cdata
            if key in self._live:
                continue
            if inputs is None:
                inputs = {a.untyped_storage()._cdata for a in _tensors((args, kwargs))}
            if key not in inputs:
                self._add_storage(st)
        if self.record:
            self.timeline.append((str(func), self.current))
        return out


def _tensors(x: Any):
    """The tensors in nested tuples/lists/dicts (ATen op arguments and results), depth first."""
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


# ----------------------------------------------------------------------------------------------------------------------
# CUDA semantics off CUDA (TorchFunctionMode: above autograd, so casts are what autograd saves for backward)
# ----------------------------------------------------------------------------------------------------------------------
_SDPA = F.scaled_dot_product_attention
# CUDA autocast's float16 list (torch AMP docs, "CUDA Ops that can autocast to float16"), as Python entry points
_LOWER_PRECISION_FNS = {
    F.linear, F.bilinear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
    F.prelu, _SDPA, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.mm,
    torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, torch.baddbmm, torch.Tensor.baddbmm, torch.addmm, torch.Tensor.addmm,
    torch.addbmm, torch.addmv, torch.addr, torch.mv, torch.Tensor.mv, torch.einsum, torch.chain_matmul,
}
# CUDA autocast's float32 list (the entries a transformer head can reach)
_FP32_FNS = {
    F.layer_norm, F.group_norm, F.softmax, torch.softmax, torch.Tensor.softmax, F.log_softmax, torch.log_softmax,
    torch.Tensor.log_softmax, F.softmin, F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss, F.kl_div,
    F.binary_cross_entropy_with_logits, F.cosine_similarity, F.normalize, F.softplus, torch.exp, torch.Tensor.exp,
    torch.log, torch.Tensor.log, torch.log1p, torch.Tensor.log1p, torch.expm1, torch.rsqrt, torch.Tensor.rsqrt,
    torch.reciprocal, torch.Tensor.reciprocal, torch.pow, torch.Tensor.pow, torch.Tensor.__pow__, torch.sum,
    torch.Tensor.sum, torch.prod, torch.Tensor.prod, torch.cumsum, torch.Tensor.cumsum, torch.cumprod, torch.norm,
    torch.Tensor.norm, torch.logsumexp, torch.Tensor.logsumexp, torch.cdist, torch.dist,
}


_DROPOUT_FNS = {F.dropout, torch.dropout, torch.nn.functional.dropout}


class _StepEmulation(TorchFunctionMode):
    """Make a step on a non-CUDA device allocate what the same step allocates on CUDA.

    Three things differ between CUDA and other devices and are emulated here, above autograd (so that what autograd
    saves for backward is what CUDA saves):
    - ``amp``: ``torch.autocast('cuda', float16)`` casts (see ``_LOWER_PRECISION_FNS`` / ``_FP32_FNS``);
    - dropout: ``at::dropout`` uses the fused ``native_dropout`` (1-byte mask saved for backward) only on CUDA and draws
      a float noise tensor elsewhere (4 bytes saved); ``F.dropout`` is routed to ``native_dropout``;
    - ``sdpa``: "efficient" routes ``F.scaled_dot_product_attention`` to the memory-efficient kernel's ATen op (meta
      only); "explicit" to ``_math_sdpa_cuda``, the math backend's op sequence with CUDA's dropout.
    """

    def __init__(self, amp: bool, sdpa: str, low: torch.dtype = torch.float16) -> None:
        super().__init__()
        _check_choice("sdpa", sdpa, ATTENTIONS)
        self.amp = amp
        self.sdpa = sdpa
        self.low = low
        self._weight_cache: dict[int, torch.Tensor] = {}

    def _to(self, x: Any, src: tuple[torch.dtype, ...], dst: torch.dtype) -> Any:
        if not (isinstance(x, torch.Tensor) and x.dtype in src):
            return x
        if x.is_leaf and x.requires_grad and dst == self.low:  # autocast caches casts of parameters
            key = id(x)
            if key not in self._weight_cache:
                self._weight_cache[key] = x.to(dst)
            return self._weight_cache[key]
        return x.to(dst)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.amp and func in _LOWER_PRECISION_FNS:
            args, kwargs = tree_map(lambda x: self._to(x, (torch.float32,), self.low), (args, kwargs))
        elif self.amp and func in _FP32_FNS and "dtype" not in kwargs:
            half = (torch.float16, torch.bfloat16)
            args, kwargs = tree_map(lambda x: self._to(x, half, torch.float32), (args, kwargs))
        if func is _SDPA:
            return (_efficient_sdpa if self.sdpa == "efficient" else _math_sdpa_cuda)(*args, **kwargs)
        if func in _DROPOUT_FNS:
            return _cuda_dropout(*args, **kwargs)
        return func(*args, **kwargs)

    def __exit__(self, *exc):
        self._weight_cache.clear()
        return super().__exit__(*exc)


def _cuda_dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
                  train: bool | None = None) -> torch.Tensor:
    """``F.dropout`` as CUDA runs it: identity when off, else ``native_dropout`` (saves a bool mask for backward)."""
    training = training if train is None else train
    if not training or p == 0 or input.numel() == 0:
        return input
    if p == 1:
        return input * 0
    out = torch.ops.aten.native_dropout(input, p, True)[0]
    return input.copy_(out) if inplace else out


def _efficient_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """``F.scaled_dot_product_attention`` through the memory-efficient kernel's ATen op (meta kernels fwd and bwd)."""
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    out = torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, attn_mask, needs_grad, dropout_p, is_causal, scale=scale
    )
    return out[0]


def _math_sdpa_cuda(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """The math SDPA backend's op sequence (upcast of half inputs, sqrt-scaled q and k, bmm, _safe_softmax, dropout,
    bmm, cast back) with CUDA's fused dropout, for shape-only execution."""
    orig = query.dtype
    if orig in (torch.float16, torch.bfloat16) and not torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed():
        query, key, value = query.float(), key.float(), value.float()
    s = math.sqrt(scale if scale is not None else 1.0 / math.sqrt(query.shape[-1]))
    attn = (query * s) @ (key.transpose(-2, -1) * s)  # (B, h, Nq, Nk)
    if is_causal:
        nq, nk = attn.shape[-2:]
        attn = attn.masked_fill(~torch.ones(nq, nk, dtype=torch.bool, device=attn.device).tril(), float("-inf"))
    if attn_mask is not None:
        attn = (attn.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                else attn + attn_mask)
    attn = torch.ops.aten._safe_softmax(attn, -1)
    if dropout_p > 0:
        attn = torch.ops.aten.native_dropout(attn, dropout_p, True)[0]
    return (attn @ value).to(orig)


# ----------------------------------------------------------------------------------------------------------------------
# The measured training step
# ----------------------------------------------------------------------------------------------------------------------
def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def head_and_inputs(cfg: Any, batch: int, device: str | torch.device, seed: int = 0):
    """The head of ``cfg`` (part after the bridge) and random bridge outputs for one batch, on ``device``.

    Returns:
        (head, vis, aud): vis (B, t, h, w, D) and aud (B, f, ta, D) with the grid of
        ``paperlib.model.sparsesync.token_grid(cfg)``.
    """
    from paperlib.model.sparsesync import build_head, token_grid

    (t, h, w), (f, ta) = token_grid(cfg)
    torch.manual_seed(seed)
    with torch.device(device):
        head = build_head(cfg)
        vis = torch.randn(batch, t, h, w, cfg.d_model)  # (B, t, h, w, D)
        aud = torch.randn(batch, f, ta, cfg.d_model)  # (B, f, ta, D)
    head.train()
    return head, vis, aud


def training_step(head: torch.nn.Module, vis: torch.Tensor, aud: torch.Tensor, optimizer: torch.optim.Optimizer,
                  *, precision: str = "fp32", attention: str = "efficient", emulate_cuda: bool | None = None,
                  grad_clip: float = 1.0) -> None:
    """One optimisation step of ``head`` as the official loop does it (without GradScaler; see the module docstring).

    Args:
        emulate_cuda: off CUDA, run the step as CUDA would allocate it (``_StepEmulation``; default off CUDA). False
            runs the device's own kernels (fp32 and explicit attention only): used to check the tracker against the CPU
            allocator.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    _check_choice("precision", precision, PRECISIONS)
    _check_choice("attention", attention, ATTENTIONS)
    device_type = vis.device.type
    emulate = device_type != "cuda" if emulate_cuda is None else emulate_cuda
    if device_type == "cuda" and emulate:
        raise ValueError("emulate_cuda makes no sense on CUDA")
    if not emulate and device_type != "cuda" and (precision != "fp32" or attention != "explicit"):
        raise ValueError(f"without emulation a {device_type} step supports only fp32 + explicit attention")
    if emulate and device_type == "cpu" and attention == "efficient":
        raise ValueError("the memory-efficient SDPA kernel has no CPU implementation; use device 'meta' or 'cuda'")
    optimizer.zero_grad(set_to_none=True)
    with ExitStack() as stack:
        if device_type == "cuda":
            backend = SDPBackend.MATH if attention == "explicit" else SDPBackend.EFFICIENT_ATTENTION
            stack.enter_context(sdpa_kernel([backend]))
            stack.enter_context(torch.autocast("cuda", dtype=torch.float16, enabled=precision == "amp"))
        elif emulate:
            stack.enter_context(_StepEmulation(amp=precision == "amp", sdpa=attention))
        else:
            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        logits = head(vis, aud)
        if isinstance(logits, tuple):
            logits = logits[0]
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, target)
    loss.backward()
    del logits, loss
    torch.nn.utils.clip_grad_norm_(head.parameters(), grad_clip)
    optimizer.step()


def _make_optimizer(head: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(head.parameters(), lr=1e-4, foreach=True)


def _prime_adam(optimizer: torch.optim.Optimizer) -> None:
    """Create Adam's per-parameter state as a first step would (step counter on CPU, two moments like the parameter).

    What a warm-up step leaves behind is exactly this state (gradients are set to None before the next step), so
    priming it replaces the warm-up step in the estimate at no cost.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            optimizer.state[p] = {"step": torch.tensor(1.0, dtype=torch.float32),
                                  "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                  "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}


def tracked_step(cfg: Any, batch: int = 10, *, precision: str = "amp", attention: str = "efficient",
                 device: str = "meta", block: int = CUDA_BLOCK_BYTES, emulate_cuda: bool | None = None,
                 record: bool = False) -> StorageTracker:
    """One steady-state training step of ``cfg``'s head under ``StorageTracker`` (peak in ``.peak``, bytes).

    Args:
        device: "meta" (the estimate: nothing is allocated), "cpu" (the same count over real tensors) or "cuda" (the
            count over CUDA's own kernels, for diagnosing a disagreement with ``torch.cuda.max_memory_allocated``).
        block: allocation rounding; 512 mimics CUDA, 1 counts raw bytes.
        emulate_cuda: see ``training_step``.
        record: keep the (op, live bytes) timeline in ``.timeline`` (frees show up at the next op).
    """
    tracker = StorageTracker(device_type=device, block=block, record=record)
    head, vis, aud = head_and_inputs(cfg, batch, device)
    optimizer = _make_optimizer(head)
    tracker.track([*head.parameters(), *head.buffers(), vis, aud])
    with tracker:
        _prime_adam(optimizer)  # the state a warm-up step leaves (steady-state training)
        tracker.reset_peak()
        training_step(head, vis, aud, optimizer, precision=precision, attention=attention, emulate_cuda=emulate_cuda)
    return tracker


def estimate_peak(cfg: Any, batch: int = 10, *, precision: str = "amp", attention: str = "efficient",
                  device: str = "meta", block: int = CUDA_BLOCK_BYTES, emulate_cuda: bool | None = None,
                  overhead_bytes: int = 0) -> int:
    """Estimated peak bytes of one steady-state training step of ``cfg``'s head (``tracked_step``'s peak).

    Args:
        overhead_bytes: added constant for what no op returns (e.g. cuBLAS workspaces on CUDA, module docstring).
    """
    tracker = tracked_step(cfg, batch, precision=precision, attention=attention, device=device, block=block,
                           emulate_cuda=emulate_cuda)
    return tracker.peak + overhead_bytes


def exact_cpu_peak(cfg: Any, batch: int = 2, *, precision: str = "fp32", attention: str = "explicit",
                   emulate_cuda: bool = False, seed: int = 0) -> int:
    """Peak bytes of the same step on real CPU tensors, from the CPU allocator's own events (no rounding).

    The torch profiler records every allocation and free of the CPU allocator (``profile_memory=True``); the peak is the
    bytes live when the measured step starts (parameters, inputs, Adam state, computed from the tensors themselves) plus
    the maximum of the running sum of the step's allocation events. Independent of ``StorageTracker``; compare with
    ``estimate_peak(..., block=1)`` and the same ``emulate_cuda``.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    kw = dict(precision=precision, attention=attention, emulate_cuda=emulate_cuda)
    head, vis, aud = head_and_inputs(cfg, batch, "cpu", seed=seed)
    optimizer = _make_optimizer(head)
    training_step(head, vis, aud, optimizer, **kw)  # warm-up: Adam state
    optimizer.zero_grad(set_to_none=True)
    state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    live = {t.untyped_storage()._cdata: t.untyped_storage().nbytes() for t in [*head.parameters(), *head.buffers(),
                                                                               vis, aud, *state]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            training_step(head, vis, aud, optimizer, **kw)
    events: list[tuple[int, int]] = []

    def walk(node) -> None:
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    running = peak = 0
    for _, size in sorted(events):
        running += size
        peak = max(peak, running)
    return sum(live.values()) + peak


def measure_cuda_peak(cfg: Any, batch: int = 10, *, precision: str = "amp", attention: str = "efficient") -> int:
    """``torch.cuda.max_memory_allocated`` over one steady-state training step of ``cfg``'s head (bytes).

    Raises:
        torch.OutOfMemoryError: when the step does not fit (``compare_with_cuda`` records it as NaN).
    """
    if not torch.cuda.is_available():
        raise RuntimeError("measure_cuda_peak needs CUDA; use estimate_peak without a GPU")
    gc.collect()
    torch.cuda.empty_cache()
    try:
        head, vis, aud = head_and_inputs(cfg, batch, "cuda")
        optimizer = _make_optimizer(head)
        training_step(head, vis, aud, optimizer, precision=precision, attention=attention)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        training_step(head, vis, aud, optimizer, precision=precision, attention=attention)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated())
    finally:
        head = vis = aud = optimizer = None  # noqa: F841  (free before the next configuration)
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------------------------
# The Fig. 4 sweep and its summaries
# ----------------------------------------------------------------------------------------------------------------------
def _cfg_for(base_cfg: Any, variant: str, seconds: float) -> Any:
    return replace(base_cfg, variant=variant, geometry=replace(base_cfg.geometry, clip_sec=float(seconds)))


def _n_tokens(cfg: Any) -> tuple[int, int]:
    from paperlib.model.sparsesync import token_grid

    (t, h, w), (f, ta) = token_grid(cfg)
    return t * h * w, f * ta


def memory_sweep(base_cfg: Any, seconds: Iterable[float] = PAPER_SECONDS,
                 variants: Sequence[str] = ("sparsesync", "transformer"), attentions: Sequence[str] = ATTENTIONS,
                 *, batch: int = 10, precision: str = "amp", method: str = "estimate",
                 overhead_bytes: int = CUDA_OVERHEAD_BYTES, progress: bool = True) -> pd.DataFrame:
    """Peak training memory vs clip duration for each (variant, attention) curve.

    Args:
        base_cfg: a ``paperlib.model.sparsesync.ModelConfig`` (paper width/depth/geometry); ``variant`` and the
            geometry's ``clip_sec`` are replaced.
        method: "estimate" (meta device + StorageTracker) or "cuda" (``torch.cuda.max_memory_allocated``; OOM -> NaN).
        overhead_bytes: constant added to each estimate (default: the cuBLAS workspaces, ``CUDA_OVERHEAD_BYTES``).

    Returns:
        One row per point: seconds, model (label), variant, attention, precision, batch, n_visual, n_audio, bytes, GiB,
        method, wall_s.
    """
    _check_choice("method", method, ("estimate", "cuda"))
    from tqdm.auto import tqdm

    seconds = list(seconds)
    jobs = [(v, a, s) for v in variants for a in attentions for s in seconds]
    rows = []
    for variant, attention, sec in tqdm(jobs, desc=f"memory {method}", disable=not progress):
        cfg = _cfg_for(base_cfg, variant, sec)
        n_vis, n_aud = _n_tokens(cfg)
        t0 = time.perf_counter()
        if method == "estimate":
            nbytes: float = estimate_peak(cfg, batch, precision=precision, attention=attention,
                                          overhead_bytes=overhead_bytes)
        else:
            try:
                nbytes = measure_cuda_peak(cfg, batch, precision=precision, attention=attention)
            except torch.OutOfMemoryError:
                nbytes = float("nan")
        rows.append(dict(seconds=float(sec), model=VARIANT_LABELS.get(variant, variant), variant=variant,
                         attention=attention, precision=precision, batch=batch, n_visual=n_vis, n_audio=n_aud,
                         bytes=nbytes, GiB=nbytes / GIB, method=method, wall_s=time.perf_counter() - t0))
    df = pd.DataFrame(rows)
    for variant in variants:
        sub = df[df.variant == variant]
        if len(set(attentions)) > 1 and sub.groupby("seconds")["bytes"].nunique().max() == 1:
            warnings.warn(f"{variant}: efficient and explicit attention give identical memory; does the head call "
                          "F.scaled_dot_product_attention in its default path?", stacklevel=2)
    return df


def fit_exponents(df: pd.DataFrame, min_seconds: float | None = None) -> pd.DataFrame:
    """Growth exponents of peak memory vs duration per curve.

    - ``k_all`` / ``k_upper``: slope of log(bytes) vs log(seconds) over all points / over seconds >= the median of the
      sweep (or ``min_seconds``). The duration-independent part (parameters, gradients, Adam state) flattens these.
    - ``k_excess``: growth exponent of the duration-dependent part (bytes minus the intercept of a quadratic fit over
      the upper points) at the longest duration: 1 for linear and 2 for quadratic memory (``_excess_exponent``).
    - ``quad_share``: share of the last point explained by the quadratic term of a least-squares fit a + b s + c s^2.
    """
    rows = []
    for (model, attention), sub in df.dropna(subset=["bytes"]).groupby(["model", "attention"], sort=False):
        sub = sub.sort_values("seconds")
        s, y = sub.seconds.to_numpy(float), sub.bytes.to_numpy(float)
        lo = float(np.median(s)) if min_seconds is None else float(min_seconds)
        up = s >= lo
        k_all = np.polyfit(np.log(s), np.log(y), 1)[0] if len(s) >= 2 else np.nan
        k_up = np.polyfit(np.log(s[up]), np.log(y[up]), 1)[0] if up.sum() >= 2 else np.nan
        if len(s) >= 3:
            c2, c1, c0 = np.polyfit(s, y, 2)
            quad_share = float(c2 * s[-1] ** 2 / y[-1])
        else:
            quad_share = np.nan
        rows.append(dict(model=model, attention=attention, k_all=float(k_all), k_upper=float(k_up), upper_from_s=lo,
                         k_excess=_excess_exponent(s[up], y[up]), quad_share=quad_share, GiB_min=float(y[0] / GIB),
                         GiB_max=float(y[-1] / GIB), seconds_min=float(s[0]), seconds_max=float(s[-1])))
    return pd.DataFrame(rows)


def _excess_exponent(s: np.ndarray, y: np.ndarray) -> float:
    """Growth exponent of the duration-dependent part at the longest duration, from a least-squares a + b s + c s^2.

    With y - a = b s + c s^2 the local exponent d log(y - a) / d log s at s_max is (b + 2 c s) / (b + c s): 1 for purely
    linear and 2 for purely quadratic growth. NaN with fewer than 4 points.
    """
    if len(s) < 4:
        return float("nan")
    c, b, _ = np.polyfit(s, y, 2)
    smax = float(np.max(s))
    denom = b + c * smax
    return float((b + 2 * c * smax) / denom) if denom > 0 else float("nan")


def break_points(df: pd.DataFrame, capacities: dict[str, float] | None = None) -> pd.DataFrame:
    """Per curve and GPU: the longest swept duration that fits, the first that does not, and the interpolated crossing.

    ``crossing_s`` interpolates log(GiB) linearly in log(seconds) between the two points; NaN when the curve never
    crosses within the sweep (``fits_all`` tells which side).
    """
    capacities = GPU_CAPACITY_GIB if capacities is None else capacities
    rows = []
    for (model, attention), sub in df.groupby(["model", "attention"], sort=False):
        sub = sub.sort_values("seconds")
        s, g = sub.seconds.to_numpy(float), sub.GiB.to_numpy(float)
        g = np.where(np.isnan(g), np.inf, g)  # an OOM on the GPU does not fit
        for gpu, cap in capacities.items():
            over = np.nonzero(g > cap)[0]
            first = int(over[0]) if len(over) else None
            last_fit = s[first - 1] if first not in (None, 0) else (s[-1] if first is None else np.nan)
            crossing = np.nan
            if first not in (None, 0) and np.isfinite(g[first]):
                x0, x1, y0, y1 = np.log(s[first - 1]), np.log(s[first]), np.log(g[first - 1]), np.log(g[first])
                crossing = float(np.exp(x0 + (np.log(cap) - y0) * (x1 - x0) / (y1 - y0)))
            rows.append(dict(model=model, attention=attention, gpu=gpu, capacity_GiB=cap, fits_all=first is None,
                             last_fitting_s=float(last_fit), first_failing_s=float(s[first]) if first is not None
                             else np.nan, crossing_s=crossing))
    return pd.DataFrame(rows)


def compare_with_cuda(base_cfg: Any, seconds: Iterable[float] = (2, 5, 10),
                      variants: Sequence[str] = ("sparsesync", "transformer"), attentions: Sequence[str] = ATTENTIONS,
                      precisions: Sequence[str] = PRECISIONS, batch: int = 10,
                      overhead_bytes: int = CUDA_OVERHEAD_BYTES) -> pd.DataFrame:
    """Estimate vs ``torch.cuda.max_memory_allocated`` for each configuration (the GPU check script calls this).

    Agreement measured on an H200 (torch 2.11, batch 10, paper width/depth, 2-20 s, both models, both precisions, both
    attention paths): the dispatch-level count on real CUDA kernels equals the meta estimate exactly; with the cuBLAS
    workspaces added the estimate is 0.5-1 % low at 2 s and 3-7 % low at 20 s (kernel-internal scratch: the
    memory-efficient attention backward's accumulators, the math path's softmax/matmul scratch).

    Returns:
        One row per configuration: seconds, variant, attention, precision, estimate_GiB, cuda_GiB, rel_error
        ((estimate - cuda) / cuda; NaN where CUDA ran out of memory), estimate_s, cuda_s.
    """
    rows = []
    for precision in precisions:
        for variant in variants:
            for attention in attentions:
                for sec in seconds:
                    cfg = _cfg_for(base_cfg, variant, sec)
                    t0 = time.perf_counter()
                    est = estimate_peak(cfg, batch, precision=precision, attention=attention,
                                        overhead_bytes=overhead_bytes)
                    t1 = time.perf_counter()
                    try:
                        meas: float = measure_cuda_peak(cfg, batch, precision=precision, attention=attention)
                    except torch.OutOfMemoryError:
                        meas = float("nan")
                    t2 = time.perf_counter()
                    rows.append(dict(seconds=float(sec), variant=variant, attention=attention, precision=precision,
                                     batch=batch, estimate_GiB=est / GIB, cuda_GiB=meas / GIB,
                                     rel_error=(est - meas) / meas, estimate_s=t1 - t0, cuda_s=t2 - t1,
                                     device=torch.cuda.get_device_name(), torch=torch.__version__))
    return pd.DataFrame(rows)


def plot_memory(df: pd.DataFrame, out_stem: str | Path, capacities: dict[str, float] | None = None,
                title: str | None = None) -> list[Path]:
    """Fig. 4: peak training memory (GiB) vs input duration per curve, with GPU capacities; writes .png and .pdf."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    capacities = GPU_CAPACITY_GIB if capacities is None else capacities
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.0, 4.6))
    styles = {"efficient": "-", "explicit": "--"}
    markers = {"estimate": "o", "cuda": "x"}
    colors: dict[str, str] = {}
    several_methods = df["method"].nunique() > 1
    for (model, attention, method), sub in df.groupby(["model", "attention", "method"], sort=False):
        sub = sub.sort_values("seconds")
        label = f"{model}, {'SDPA mem-efficient' if attention == 'efficient' else 'explicit softmax'} attention"
        if several_methods:
            label += f" ({method})"
        color = colors.setdefault(f"{model}/{attention}", f"C{len(colors)}")
        ax.plot(sub.seconds, sub.GiB, styles.get(attention, "-"), marker=markers.get(method, "o"), ms=3, color=color,
                label=label, alpha=0.6 if method == "estimate" and several_methods else 1.0)
    for gpu, cap in capacities.items():
        ax.axhline(cap, color="grey", lw=0.8, ls=":")
        ax.text(float(df.seconds.max()), cap, f"{gpu} ", va="bottom", ha="right", fontsize=7, color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("input duration (s)")
    ax.set_ylabel("peak training memory (GiB)")
    methods = ", ".join(sorted(set(df["method"])))
    ax.set_title(title or f"batch {int(df.batch.iloc[0])}, {df.precision.iloc[0]}, {methods}", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


__all__ = [
    "ATTENTIONS", "CUDA_OVERHEAD_BYTES", "GIB", "GPU_CAPACITY_GIB", "PAPER_SECONDS", "PRECISIONS", "StorageTracker",
    "break_points", "compare_with_cuda", "estimate_peak", "exact_cpu_peak", "fit_exponents", "head_and_inputs",
    "measure_cuda_peak", "memory_sweep", "plot_memory", "tracked_step", "training_step",
]
