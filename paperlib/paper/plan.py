"""What the campaign trains (:mod:`paperlib.paper.campaign`): the runs of each profile as :class:`RunSpec` s.

:func:`plan` lists every run a training artefact may ask for plus the hidden parents of the fine-tuning chains,
parents first; :func:`contract_keys` are its runs that are not hidden (the keys the artefacts ask for). How a spec
becomes a run configuration and a campaign hash: :mod:`paperlib.paper.run_config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from paperlib.core.geometry import official_max_offset
from paperlib.paper import profiles

VARIANTS = ("sparsesync", "transformer", "avst_dec")
SETTINGS = ("dense-crop", "dense-wide", "sparse", "general")
CLASSES = (21, 3)
BACKBONE_PREFIXES = ("visual_backbone.", "audio_backbone.")  # state-dict key prefixes of the feature extractors
# The keys a profile with repeat_seeds (paperlib.paper.profiles: why, and which profile) judges on the mean of several
# seeds: Table 2's headline claim (SparseSync vs AVST_dec on sparse data, both grids).
REPEATED_KEYS = ("sparsesync/sparse/c21", "sparsesync/sparse/c3", "avst_dec/sparse/c21", "avst_dec/sparse/c3")


@dataclass(frozen=True)
class RunSpec:
    key: str  # "{variant}/{setting}/c{C}[/suffix]" (the artefacts' keys; hidden parents use the same scheme)
    variant: str  # "sparsesync" | "transformer" | "avst_dec"
    setting: str  # "dense-crop" | "dense-wide" | "sparse" | "general": the data it trains on
    num_classes: int  # 21 | 3
    clip_sec: float = 5.0  # s, input window
    depth: int | None = None  # None: the profile's default
    init_from: str | None = None  # key of the run whose best.pt initialises this one
    init_skip: tuple[str, ...] = ()  # state-dict key prefixes left at fresh init
    frozen_backbones: bool = False
    test_setting: str | None = None  # evaluate on another setting's test split (None: its own)
    steps: int = 0  # optimiser steps at this profile: the run's cap (0: none fixed, early stopping at paper)
    patience_steps: int = 0  # stop after this many steps without a new best once learning (0: train to the cap)
    # a run that starts its extractors afresh (a chain's first run, the frozen rows) loads the pre-trained extractor
    # weights (paperlib.paper.run_config.extractor_weights); False: random extractors ("not pre-trained")
    pretrained_extractors: bool = True
    # a parent that exists only to be fine-tuned (no artefact asks for it; not in contract_keys); not part of what a
    # run is, so an alias and the run it aliases compare equal whatever their visibility
    hidden: bool = dataclasses.field(default=False, compare=False)


def loads_pretrained_extractors(spec: RunSpec) -> bool:
    """Does the run start its extractors from the pre-trained weights (a chain's first run, a frozen row), rather
    than from its parent or at random?"""
    return spec.pretrained_extractors and (spec.init_from is None or spec.frozen_backbones)


def _fmt_len(sec: float) -> str:
    return f"{sec:g}"


def _budget(profile: str, kind: str) -> dict[str, int]:
    """The cap and the patience of a run of ``kind`` at ``profile`` (RunSpec fields); "short-base" falls back to
    "base" where the profile gives it no numbers of its own."""
    prof = profiles.profile(profile)
    if kind == "short-base" and kind not in prof.steps:
        kind = "base"
    return {"steps": prof.steps[kind] if prof.steps else 0, "patience_steps": prof.patience_steps.get(kind, 0)}


def plan(profile: str) -> dict[str, RunSpec]:
    """Every key any training artefact may ask for at ``profile`` (plus hidden parents), parents before children."""
    prof = profiles.profile(profile)
    L0, d0 = prof.default_clip_sec, prof.default_depth
    out: dict[str, RunSpec] = {}

    def add(spec: RunSpec) -> None:
        if spec.init_from is not None and spec.init_from not in out:
            raise AssertionError(f"plan: parent {spec.init_from!r} of {spec.key!r} is not planned before it")
        out[spec.key] = spec

    def chain(variant: str, suffix: str = "", *, clip_sec: float = L0, depth: int | None = None,
              settings: Sequence[str] = ("dense-crop", "dense-wide", "sparse"), c3: Sequence[str] = (),
              hidden: Sequence[str] = (), pretrained: bool = True, classes: int = 21) -> None:
        """dense-crop -> dense-wide -> sparse at ``classes`` (+ 3-class fine-tunes of the settings in ``c3``); the
        runs of the settings in ``hidden`` are parents only; ``pretrained``: the first run loads the pre-trained
        extractor weights (else random extractors)."""
        parent = None
        # the chain's first run is its base; a base whose input is no longer than the 21-class grid's largest offset
        # has a cap of its own (paperlib.paper.profiles, "short-base")
        base_kind = "short-base" if clip_sec <= official_max_offset(21) else "base"
        for s in settings:
            kind = base_kind if parent is None else s
            add(RunSpec(f"{variant}/{s}/c{classes}{suffix}", variant, s, classes, clip_sec, depth,
                        init_from=parent, **_budget(profile, kind), pretrained_extractors=pretrained,
                        hidden=s in hidden))
            parent = f"{variant}/{s}/c{classes}{suffix}"
        for s in c3:
            add(RunSpec(f"{variant}/{s}/c3{suffix}", variant, s, 3, clip_sec, depth,
                        init_from=f"{variant}/{s}/c21{suffix}", **_budget(profile, "c3")))

    # Table 2 (+ Fig. 3): SparseSync and AVST_dec on the three settings, 21 and 3 classes
    for v in ("sparsesync", "avst_dec"):
        chain(v, c3=("dense-crop", "dense-wide", "sparse"))
    # Tables 3/5: no selectors; sync model not pre-trained on dense data; extractors not pre-trained; frozen extractors
    chain("transformer", hidden=("dense-crop",))
    add(RunSpec("sparsesync/sparse/c21/scratch", "sparsesync", "sparse", 21, L0, None,
                **_budget(profile, "scratch")))
    # "feature extractors not pre-trained": the same chain from random extractors, trained the same way
    chain("sparsesync", "/no-pretrained-extractors", hidden=("dense-crop",), pretrained=False)
    add(RunSpec("sparsesync/dense-wide/c21/frozen-extractors", "sparsesync", "dense-wide", 21, L0,
                init_from="sparsesync/dense-crop/c21", frozen_backbones=True, **_budget(profile, "dense-wide")))
    add(RunSpec("sparsesync/sparse/c21/frozen-extractors", "sparsesync", "sparse", 21, L0,
                init_from="sparsesync/dense-wide/c21/frozen-extractors", frozen_backbones=True,
                **_budget(profile, "sparse")))
    # Table 4: input length (sparse), own chains; the default length aliases the full model. A length no longer than
    # the 21-class grid's largest offset (2 s) trains at 3 classes only, from its base on, as the paper's Table 4 has
    # no 21-class 2-s cell and the official 3-class models come from a 3-class chain (LRS3 "No Face Crop" -> VGGSound-
    # Sparse): at a 2-s window a +-2 s offset leaves the two streams no common second, so most of the 21-class grid
    # cannot be read from the input (on the synthetic benchmark the 21-class 2-s base left the training loss plateau
    # only after ~3,000 steps and its test top-1 stayed at its null; the 3-class 2-s base left it in five of six runs
    # and reached 44-62 % against a 34 % null; results/plateau_study/).
    for L in prof.lengths:
        sfx = f"/len{_fmt_len(L)}"
        if L == L0:
            for c in CLASSES:
                base = out[f"sparsesync/sparse/c{c}"]
                add(dataclasses.replace(base, key=f"sparsesync/sparse/c{c}{sfx}"))
        elif L <= official_max_offset(21):
            chain("sparsesync", sfx, clip_sec=L, classes=3, hidden=("dense-crop", "dense-wide"))
        else:
            chain("sparsesync", sfx, clip_sec=L, c3=("sparse",), hidden=("dense-crop", "dense-wide"))
    # Table 6: depth (dense-wide, 21 classes), own chains; the default depth aliases the full model
    for d in prof.depths:
        sfx = f"/depth{d}"
        if d == d0:
            for s in ("dense-crop", "dense-wide"):
                add(dataclasses.replace(out[f"sparsesync/{s}/c21"], key=f"sparsesync/{s}/c21{sfx}",
                                        hidden=s == "dense-crop"))
        else:
            chain("sparsesync", sfx, depth=d, settings=("dense-crop", "dense-wide"), hidden=("dense-crop",))
    # Table 7: fine-tuned on the larger, more varied general set, tested on the sparse test split
    add(RunSpec("sparsesync/general/c21", "sparsesync", "general", 21, L0, init_from="sparsesync/dense-wide/c21",
                test_setting="sparse", **_budget(profile, "general")))
    return out


def contract_keys(profile: str) -> list[str]:
    """The keys the training artefacts ask for: the plan's runs that are not hidden parents, in plan order."""
    return [k for k, s in plan(profile).items() if not s.hidden]


def closure(keys: Iterable[str], specs: Mapping[str, RunSpec]) -> list[str]:
    """``keys`` and their ancestors, parents first (plan order)."""
    need: set[str] = set()
    for k in keys:
        if k not in specs:
            raise KeyError(f"unknown campaign key {k!r}; known keys: {sorted(specs)}")
        while k is not None and k not in need:
            need.add(k)
            k = specs[k].init_from
    return [k for k in specs if k in need]


def canonical_key(spec: RunSpec, specs: Mapping[str, RunSpec]) -> str:
    """The first key of the plan whose spec equals ``spec`` up to the key (aliases map to the key they alias)."""
    for k, s in specs.items():
        if dataclasses.replace(s, key=spec.key) == spec:
            return k
    return spec.key


def repeated_keys(keys: Iterable[str], profile: str) -> list[str]:
    """The ones of ``keys`` that ``profile`` retrains under its ``repeat_seeds``: REPEATED_KEYS and their aliases
    (keys with the same spec, e.g. Table 4's ``sparsesync/sparse/c21/len5``)."""
    if not profiles.profile(profile).repeat_seeds:
        return []
    specs = plan(profile)
    return [k for k in keys if k in specs and canonical_key(specs[k], specs) in REPEATED_KEYS]


def planned_seeds(profile: str, key: str, seed: int = 0) -> tuple[int, ...]:
    """The seeds ``profile`` plans for run ``key``: the campaign seed, and ``seed`` + each of its ``repeat_seeds``
    for the keys it repeats (:func:`repeated_keys`)."""
    repeats = profiles.profile(profile).repeat_seeds if repeated_keys([key], profile) else ()
    return tuple(seed + o for o in (0,) + tuple(repeats))
