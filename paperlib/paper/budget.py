"""The plan's estimated cost at the CPU profiles (mini, full): minutes per run from measured step costs, the data
generation, and the wall time of the campaign's workers, against each profile's ``budget_target_min``
(:mod:`paperlib.paper.profiles`, where the step counts these constants were calibrated for are explained)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from paperlib.paper import profiles
from paperlib.paper.campaign_runner import finished, hash_root
from paperlib.paper.plan import RunSpec, canonical_key, closure, plan, repeated_keys
from paperlib.paper.run_config import spec_hash, upstream_configs

# s per step of a campaign run: SparseSync, depth 2, 5-s windows, batch 8, the cpu-recipe step (recipe aids,
# channels-last weights) with its data loading and validation, as one of two one-thread workers on the 2-core machine
# with nothing else running. Measured over 100-step windows of the plateau study's seed-2 runs (results/plateau_study,
# dense-crop, 21 classes): 0.27-0.36 s/step, median ~0.32; AVST_dec beside it 0.28-0.30 (0.9x, as COST_VARIANT).
# The step alone, one process on a fixed batch without data loading (bench.cpu_train_step --preset cpu-recipe
# --threads 1, quiet) is 0.18 s: the two workers sharing the machine and loading their clips make up the rest. A third
# busy process slows each worker another ~1.5x (the study's seed-0 runs: 0.68-0.82 s/step), so a campaign beside
# other work takes correspondingly longer than this estimate.
# The CPU settings were measured side by side (bench.cpu_train_step, results/bench/cpu_train_step.json, load 3.6-4.9):
# channels-last convolution weights (train.memory_format auto = channels_last on CPU) made the step 1.39x faster and
# are taken; two one-thread workers ran 4.2x the steps/s of one two-thread process; batch 8 was the fastest per clip
# (batch 4: 0.87x, 16: 0.93x); train.compile kept the numbers (losses within 2e-5 after 19 steps) and made the step
# 1.17x faster, but each of the plan's 19-30 model shapes compiles for ~5 min from a cold cache, which the bench
# judged to cost the full campaign about as much as it saves (at the bench's own step cost), so it is not taken.
SEC_PER_STEP = 0.32
COST_VARIANT = {"sparsesync": 1.0, "transformer": 1.28, "avst_dec": 0.86}  # measured relative step cost
COST_DEPTH = {1: 0.90, 2: 1.0, 3: 1.06, 6: 1.17}  # backbones dominate the step, so depth costs little
# measured at 3, 5 and 7 s; 2, 4 and 6 s are linear interpolations/extrapolations of those (not measured)
COST_LENGTH = {2.0: 0.45, 3.0: 0.63, 4.0: 0.80, 5.0: 1.0, 6.0: 1.27, 7.0: 1.55}
COST_FROZEN = 0.35  # no backward through the extractors
# per training setting, relative to dense-crop: the full campaign's Table 2 runs at seed 0, steps 210 to the end,
# validations included (SparseSync / AVST_dec s/step: dense-crop 0.332 / 0.294, dense-wide 0.297 / 0.261, sparse
# 0.457 / 0.427); sparse clips carry more events to load and their validation runs several passes. general: not
# measured yet, taken as sparse's (its clips are drawn like the sparse ones)
COST_SETTING = {"dense-crop": 1.0, "dense-wide": 0.89, "sparse": 1.42, "general": 1.42}
OVERHEAD_S = {"dense-crop": 60.0, "dense-wide": 60.0, "sparse": 80.0, "general": 90.0}
# synthetic clips generated per second by one worker at 64 px (10-s clips, x264 + AAC), for the plan's data time
# (measured 4.3 dense-crop and 5.2 sparse clips/s on one worker while other work shared the machine)
SYNTH_CLIPS_PER_S = 4.0


def run_minutes(spec: RunSpec, profile: str) -> float:
    """Estimated minutes of one run (steps x SEC_PER_STEP x relative cost + overhead) as one of two workers on the
    otherwise quiet 2-core machine."""
    prof = profiles.profile(profile)
    cost = COST_VARIANT[spec.variant] * COST_DEPTH[spec.depth or prof.default_depth]
    cost *= COST_LENGTH.get(spec.clip_sec, spec.clip_sec / prof.default_clip_sec)
    cost *= COST_SETTING[spec.setting]
    if spec.frozen_backbones:
        cost *= COST_FROZEN
    return (spec.steps * SEC_PER_STEP * cost + OVERHEAD_S[spec.setting]) / 60


# the upstream pre-training of the extractors (paperlib.engine.upstream), measured with one thread at load ~3: 1,000
# steps in 340 s including its 288 clips (generated at ~7 clips/s, then cached and shared by every length)
UPSTREAM_SEC_PER_STEP = 0.3
UPSTREAM_CLIPS_PER_S = 7.0


def upstream_minutes(profile: str, specs: Mapping[str, RunSpec]) -> float:
    """Minutes of the upstream trainings the runs of ``specs`` load (one per distinct configuration; the campaign
    trains them before its workers start)."""
    configs = upstream_configs(profile, specs)
    if not configs:
        return 0.0
    clips = max(3 * (c.clips_per_setting + c.test_clips_per_setting) for c in configs)
    return (sum(c.steps for c in configs) * UPSTREAM_SEC_PER_STEP + clips / UPSTREAM_CLIPS_PER_S) / 60


def data_clips(profile: str) -> int:
    """Synthetic clips a whole campaign of ``profile`` generates (training sets, the general parts, test sets)."""
    p = profiles.profile(profile).synth
    n = sum(p.clips.values()) + sum(c for _, _, c in p.general_parts)
    return n + p.test * len(p.clips)


def wall_minutes(minutes: Mapping[str, float], parents: Mapping[str, str | None], parallel: int) -> float:
    """Wall time of runs (``minutes`` by key, in plan order) on ``parallel`` workers, scheduled as the campaign does:
    the next run whose parent has finished (or is not among these runs) takes the first free worker."""
    pending, running, done, now = list(minutes), {}, set(), 0.0
    while pending or running:
        for k in list(pending):
            if len(running) >= parallel:
                break
            if parents.get(k) not in minutes or parents[k] in done:
                pending.remove(k)
                running[k] = now + minutes[k]
        k = min(running, key=running.get)
        now = running.pop(k)
        done.add(k)
    return now


def budget(profile: str = "mini", specs: Mapping[str, RunSpec] | None = None, parallel: int = 2,
           runs_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The plan's estimated cost at ``profile`` (mini, full): minutes per distinct run (:func:`run_minutes`), their
    sum, the data generation, and the wall time of ``parallel`` workers scheduled as
    :func:`paperlib.paper.campaign.ensure_runs` does (plan order, parents first), against the profile's
    ``budget_target_min``.

    With ``runs_root``, what is left of it: each run says whether its campaign folder there holds a finished run
    (trained, or restored from a results folder), and ``left_runs`` / ``left_wall_minutes`` estimate the rest (a
    finished parent counts as done; a restored one that a run left fine-tunes from is trained again, which this
    leaves out; the data and the upstream training are counted whenever a run is left)."""
    budgeted = tuple(name for name, p in profiles.PROFILES.items() if p.budget_target_min is not None)
    if profile not in budgeted:
        raise ValueError(f"budget() estimates the CPU profiles {budgeted}, not {profile!r}")
    prof = profiles.profile(profile)
    specs = plan(profile) if specs is None else specs
    rows = []
    # seed 0: every run of the plan; each repeat seed: the chains of REPEATED_KEYS (ensure_runs at that seed)
    for offset in (0,) + prof.repeat_seeds:
        wanted = set(specs) if offset == 0 else set(closure(repeated_keys(specs, profile), specs))
        memo: dict[str, str] = {}
        owner: dict[str, str] = {}
        for key, s in specs.items():  # plan order: a wanted key's parents (in its closure) are hashed first
            if key in wanted:
                owner.setdefault(spec_hash(s, profile, specs, seed=offset, _memo=memo), key)
        tag = "" if offset == 0 else f"@seed{offset}"
        repeated = set(repeated_keys(specs, profile))
        for h, key in owner.items():
            s = specs[key]
            parent = owner[memo[s.init_from]] + tag if s.init_from else None
            row = {"key": key + tag, "parent": parent, "steps": s.steps, "minutes": round(run_minutes(s, profile), 2)}
            if runs_root is not None:
                folder = hash_root(Path(runs_root), profile, canonical_key(s, specs), h)
                row["finished"] = finished(folder) is not None
                # a result the plan asks for (else a parent only, needed while a child of it is left)
                row["wanted"] = not s.hidden if offset == 0 else key in repeated
            rows.append(row)
    dur = {r["key"]: r["minutes"] for r in rows}
    parents = {r["key"]: r["parent"] for r in rows}
    now = wall_minutes(dur, parents, parallel)
    total = sum(dur.values())
    data_min = data_clips(profile) / (SYNTH_CLIPS_PER_S * parallel) / 60
    up_min = upstream_minutes(profile, specs)
    wall = now + data_min + up_min
    out = {"profile": profile, "runs": rows, "n_runs": len(rows), "process_minutes": round(total, 1),
           "parallel": parallel, "training_wall_minutes": round(now, 1), "data_clips": data_clips(profile),
           "data_minutes": round(data_min, 1), "upstream_minutes": round(up_min, 1), "wall_minutes": round(wall, 1),
           "target_wall_minutes": prof.budget_target_min, "fits": wall <= prof.budget_target_min}
    if runs_root is not None:
        # left: what ensure_runs would train, each unfinished result and its parents in turn while unfinished
        finished_keys = {r["key"] for r in rows if r["finished"]}
        needed: set[str] = set()
        for r in rows:
            k = r["key"] if r["wanted"] else None
            while k is not None and k not in finished_keys and k not in needed:
                needed.add(k)
                k = parents[k]
        left = {k: m for k, m in dur.items() if k in needed}
        for r in rows:
            r["left"] = r["key"] in needed
        left_wall = wall_minutes(left, parents, parallel) + (data_min + up_min if left else 0.0)
        out |= {"left_runs": len(left), "left_process_minutes": round(sum(left.values()), 1),
                "left_wall_minutes": round(left_wall, 1)}
    return out

