"""The cached training runs behind the paper's training tables (Tables 2, 3/5, 4, 6, 7 and Fig. 3), per profile.

Paper: Sec. 5 (Table 2: dense-dense, dense-sparse, sparse-sparse; 3 and 21 classes), Sec. 5.2 + Sec. 7.2 (Tables 3/5:
selectors, pre-training on dense data, pre-trained and unfrozen feature extractors; Table 6: depth; Table 7: fine-tuning
on a larger general set), Table 4 (input length) and Fig. 3 (per offset class and per content class).

The artefact functions ask for runs by *key* (:func:`paperlib.paper.plan.plan` lists every key,
:func:`paperlib.paper.plan.contract_keys` those the artefacts ask for) and :func:`ensure_runs` trains what is missing:

- Each :class:`~paperlib.paper.plan.RunSpec` resolves once to a typed run configuration
  (:func:`paperlib.paper.run_config.resolve_spec`): at ``smoke`` the ``smoke``
  preset (seconds, wiring only), at ``mini`` the ``cpu-recipe`` preset (the small CPU model of the paper's architecture
  with the CPU recipe of :mod:`paperlib.engine.recipes`) on the synthetic benchmark, at ``paper`` the paper presets on
  the real datasets under ``data_root`` (``paperlib.data.provision.PAPER_DATA_DIRS``), stopped by early stopping.
- Chains ("pre-trained on dense data", as in the paper): dense-crop trains from scratch; dense-wide fine-tunes the
  dense-crop run; sparse and general fine-tune the dense-wide run; a 3-class run fine-tunes the 21-class run of the same
  variant and setting with the classifier re-initialised (``train.init_strict=false``). Depth and length rows get their
  own chains at that depth / length ("We use the same input lengths for pre-training, fine-tuning, and testing",
  Table 4); the hidden keys ``.../dense-crop/c21/depth{d}`` etc. hold their parents.
- Runs are cached by a *campaign hash* (:func:`paperlib.paper.run_config.campaign_hash`): the resolved config with
  machine-specific paths replaced by identities (the data set's recipe instead of its folder, the parent's campaign
  hash instead of its checkpoint path). Each hash owns a folder ``<runs_root>/campaign/<profile>/<slug>-<hash>/``
  (:mod:`paperlib.paper.campaign_runner`) holding the resolved ``config.json``, the job (``campaign.json``), the
  training log and the run directory (``paperlib.engine.runs`` layout). Two keys with the same hash (aliases, e.g.
  ``len5`` and the full model) share one run. A finished run (``results.json``) is reused; an unfinished one is resumed
  (``python -m paperlib train --resume RUN_DIR``).
- Every run is trained as ``python -m paperlib train --config <hash folder>/config.json [--init-from
  <parent>/checkpoints/best.pt]`` would train it (the same library entry, :func:`paperlib.engine.train.fit`; the line
  is printed at the top of its ``train.log``) inside a worker subprocess (``python -m paperlib campaign --worker``,
  OMP/MKL one thread), which then evaluates the best checkpoint on the test split once and writes
  ``test_detail.json`` (metrics with per-offset-class / per-content-class accuracy, confusion matrix, per-item
  predictions and, on synthetic data, the oracle: accuracy on the items whose window holds a sync cue,
  ``paperlib.data.synthetic.has_cue``; :func:`paperlib.engine.evaluate.evaluate_model`). With ``parallel == 1`` one
  worker trains all missing runs in dependency order (one interpreter start for all: this keeps the smoke plan within
  seconds); with ``parallel > 1`` each run is its own worker, at most ``parallel`` at a time.

Synthetic data (smoke, mini, full; :mod:`paperlib.data.provision`), generated once under
``<runs_root>/data/<profile>/<setting>/`` by ``paperlib.data.synthetic.generate`` (it skips finished clips and refuses a
folder holding another data set): ``dense-crop`` / ``dense-wide`` (LRS3 layout, the same seed: the two share talkers
and audio as LRS3's two variants share videos) and ``sparse`` (VGGSound-Sparse layout; at mini and full with 3-5
events per clip, the training clips of the recipe's sparse step). At mini and full each setting is tested on a
separate set of 400 clips of other talkers and events (``<setting>-test``, the standard generator; ``SynthData.test``),
so every comparison has 400 distinct test items; the training sets split 85/15 into train and valid. smoke splits
each set 70/10/20 and tests on its own 20 %. ``general`` (the analogue of VGGSound, "larger and more varied") is a
VGGSound-layout folder of links to two other synthetic sets: sparse clips of another seed and dense-wide talker clips
of another seed (``general_parts``); its content classes are the 8 sparse classes plus ``speech``.

Deviations (from the paper; each is documented where it is set: the profile's field in :mod:`paperlib.paper.profiles`,
or the constant in :mod:`paperlib.paper.run_config`):
- ``mini`` and ``full`` train by a fixed number of optimiser steps per run (their profile's ``steps``), not to
  early stopping; the ``paper`` profile keeps early stopping (no ``steps``).
- Every fine-tune starts a fresh optimiser (``train.init_carry_optimizer=false``; the official fine-tune carries Adam's
  moments), since the 3-class and partial-init runs cannot carry them.
- "Feature extractors not pre-trained" (Tables 3/5): our extractors have no external pre-training; the dense-crop run
  plays the part of their pre-training. The dense-wide row fine-tunes the dense-crop run with the extractors left at
  their fresh init (``train.init_skip``); the sparse row fine-tunes that dense-wide row (its extractors never saw
  dense-crop). "Frozen extractors": the dense-crop extractors, frozen through dense-wide and sparse.
- "Sync model not pre-trained on dense data" trains on sparse from scratch for as many steps as a from-scratch dense
  run at mini (mini's ``steps["base"]``) and as the sparse fine-tune at full (full's ``steps``), so it is not starved of
  steps relative to the fine-tune.
- ``mini`` evaluates the sparse and general settings as the official VGGSound-Sparse README (random offsets, several
  passes: ``SPARSE_TEST_PASSES`` instead of 25) and trains them with the official fine-tuning augmentations,
  scaled to the CPU crop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from paperlib.core.config import config_hash, from_dict, to_dict
from paperlib.core.io import describe_holder, lock_folder, write_json_atomic
from paperlib.data.datasets import DataConfig, build_dataset
from paperlib.data.provision import data_identity, ensure_data, runs_root_path
from paperlib.engine import runs, train
from paperlib.engine.config import RunConfig, load_run_config
from paperlib.engine.evaluate import count_params, evaluate_model
from paperlib.engine.upstream import ensure_upstream, upstream_paths
from paperlib.model.checkpoints import load_model
from paperlib.model.sparsesync import build_model
from paperlib.paper import profiles
from paperlib.paper.budget import run_minutes, wall_minutes
from paperlib.paper.campaign_runner import (LOG_FILE, TEST_DETAIL, Job, attempts, finished, hash_root,
                                            redirect_output, restored, run_training, schedule, slug, train_command)
from paperlib.paper.inputs import check_paper_inputs, paper_input_problems
from paperlib.paper.plan import RunSpec, canonical_key, closure, plan, planned_seeds, repeated_keys
from paperlib.paper.run_config import (TRAIN_SEED_BASE, UPSTREAM_DIR, campaign_hash, resolve_spec, spec_hash,
                                       spec_test_identity, test_data_config, upstream_config)

__all__ = ["RunRecord", "RepeatedRecord", "with_repeats", "coverage_note", "evaluate_checkpoint", "ensure_runs",
           "run_jobs", "process_count", "missing_inputs", "check_inputs"]


@dataclass
class RunRecord:
    spec: RunSpec
    run_dir: Path
    test: dict  # the test metrics of test_detail.json (evaluate_model's result)
    params: dict  # {"total": int, "trainable": int}
    wall_s: float  # training + evaluation wall time of the run that made it
    steps: int
    left_plateau_at_step: int | None
    reused: bool  # True when found in the cache
    stop_reason: str | None = None  # why training ended (results.json: max_steps, patience, time budget, ...)
    still_improving: bool | None = None  # a run ended by its cap had not run out of patience (None: not recorded)

    @property
    def stopped_on(self) -> str:
        """Why the run stopped, in the runs table's words: "patience", "cap" (with "still improving" when patience
        had not run out), "left the plateau" (plateau studies), "time budget", "epochs"."""
        return stop_text(self.stop_reason, self.still_improving)


STOP_WORDS = {"max_steps": "cap", "early_stopping": "patience", "left_plateau": "left the plateau",
              "time_budget": "time budget", "epochs": "epochs"}


def improving_at_stop(results: Mapping[str, Any]) -> bool | None:
    """A run's ``still_improving`` from its results.json: never for a run whose training loss was still at chance
    (``learning_since_step`` recorded as None)."""
    if "learning_since_step" in results and results["learning_since_step"] is None:
        return False
    return results.get("still_improving")


def stop_text(reason: str | None, still_improving: bool | None = None) -> str:
    """The runs table's words for a results.json ``stop_reason`` (see :attr:`RunRecord.stopped_on`)."""
    if reason is None:
        return ""
    text = STOP_WORDS.get(reason, reason)
    return f"{text} (still improving)" if reason == "max_steps" and still_improving else text


@dataclass(frozen=True)
class RepeatedRecord:
    """A run key trained under several seeds (:func:`with_repeats`): ``by_seed`` maps each seed to its
    :class:`RunRecord`, the campaign's own seed first. The record attributes are those of that first run (its folder,
    steps, per-item predictions for per-class tables); accuracies for verdicts are averaged over ``by_seed`` by
    :func:`paperlib.paper.tables.measure`."""

    by_seed: Mapping[int, RunRecord]
    planned: tuple[int, ...] = ()  # the seeds the profile plans for this key (by_seed holds those that finished)

    @property
    def first(self) -> RunRecord:
        return next(iter(self.by_seed.values()))

    spec = property(lambda self: self.first.spec)
    run_dir = property(lambda self: self.first.run_dir)
    test = property(lambda self: self.first.test)
    params = property(lambda self: self.first.params)
    wall_s = property(lambda self: sum(r.wall_s for r in self.by_seed.values()))
    steps = property(lambda self: self.first.steps)
    left_plateau_at_step = property(lambda self: self.first.left_plateau_at_step)
    reused = property(lambda self: all(r.reused for r in self.by_seed.values()))


# ---------------------------------------------------------------------------------------------------------------------
# evaluation: what a test pass covered, and a user's checkpoint tested like a run


def coverage_note(test: dict) -> str:
    """"n of N official test clips" (and whether the windows are the official ones) of a test result."""
    n, listed = test.get("n_clips"), test.get("clips_listed")
    text = f"{n} of {listed} listed test clips" if listed is not None else f"{n} test clips"
    td = test.get("test_data") or {}
    if td.get("fixed_offsets"):
        text += ", official fixed windows" if td.get("official_windows") else \
            ", fixed windows generated here (not the official ones)"
    else:
        text += f", random windows x{td.get('iter_times')}"
    return text + f", {test.get('n')} windows scored"


def evaluate_checkpoint(checkpoint: str | os.PathLike, key: str, profile: str = "paper", *,
                        data_root: str | os.PathLike | None = None, runs_root: str | os.PathLike | None = None,
                        device: str = "auto", seed: int = 0, batch_size: int = 8, progress: bool = True,
                        overrides: Sequence[str] = ()) -> dict:
    """The test metrics of ``key`` (its test split and protocol at ``profile``, with ``overrides`` as for
    :func:`resolve_spec`) for a user-given paperlib or official checkpoint instead of a trained run. The checkpoint's
    classes must match the key's; an official file (which stores no geometry) is read at the key's geometry.

    The result is cached under ``<runs_root>/checkpoint_eval/`` by the file (path, size, modification time) and the
    test data config: every notebook that uses the same official checkpoint evaluates it once."""
    specs = plan(profile)
    if key not in specs:
        raise KeyError(f"unknown campaign key {key!r} at profile {profile!r}; e.g. {list(specs)[:4]}")
    spec = specs[key]
    cfg = resolve_spec(spec, profile, data_root=data_root, runs_root=runs_root, seed=seed, overrides=overrides)
    dcfg = test_data_config(spec, profile, data_root=data_root, runs_root=runs_root, seed=seed, cfg=cfg,
                            overrides=overrides)
    st = Path(checkpoint).stat()
    ident = {"file": str(Path(checkpoint).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "classes": spec.num_classes, "geometry": to_dict(cfg.geometry), "test": to_dict(dcfg), "seed": seed}
    cache = runs_root_path(runs_root) / "checkpoint_eval" / f"{slug(key)}-{config_hash(ident)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    model, mcfg = load_model(checkpoint, official_base=cfg.model)
    if mcfg.geometry.num_classes != spec.num_classes:
        raise ValueError(f"{checkpoint}: the model has {mcfg.geometry.num_classes} offset classes, {key!r} needs "
                         f"{spec.num_classes}")
    t0 = time.time()
    paper = profile == "paper"  # as the worker's test pass: loader workers and every GPU of this machine
    res = evaluate_model(model, dcfg, mcfg.geometry, batch_size=batch_size, device=_device(device),
                         seed=TRAIN_SEED_BASE + seed, progress=progress,
                         num_workers=cfg.train.num_workers if paper else 0,
                         gpus=max(1, torch.cuda.device_count()) if paper else 1)
    res.update(checkpoint=str(checkpoint), key=key, profile=profile, params=count_params(model),
               eval_s=round(time.time() - t0, 2))
    write_json_atomic(cache, res)
    return res


# ---------------------------------------------------------------------------------------------------------------------
# the worker (a subprocess): train, then evaluate once


def _record(spec: RunSpec, run_dir: Path, reused: bool) -> RunRecord:
    detail = json.loads((run_dir / TEST_DETAIL).read_text())
    results = json.loads((run_dir / runs.RESULTS_FILE).read_text())
    return RunRecord(spec=spec, run_dir=run_dir, test=detail["test"], params=detail["params"],
                     wall_s=float(detail["wall_s"]), steps=int(results["steps"]),
                     left_plateau_at_step=results.get("plateau_left_at_step"), reused=reused,
                     stop_reason=results.get("stop_reason"), still_improving=improving_at_stop(results))


def _train(job: Job) -> None:
    """Train the job's run from its resolved config file, or resume its unfinished run: in this process, or through
    the job's torchrun / launcher command (:func:`paperlib.paper.campaign_runner.train_command`)."""
    resumable = [r for r in attempts(job.hash_root)
                 if not (r / runs.RESULTS_FILE).is_file() and (r / runs.CHECKPOINT_DIR / "last.pt").is_file()]
    init_from = None
    if resumable:
        args = ["--resume", str(resumable[-1])]
    else:
        if job.parent_root is not None:
            parent = finished(job.parent_root)
            if parent is None:
                raise RuntimeError(f"{job.key}: its parent run under {job.parent_root} is not finished")
            init_from = str(parent / runs.CHECKPOINT_DIR / "best.pt")
        args = ["--config", str(job.config_file)] + (["--init-from", init_from] if init_from else [])
    print(shlex.join(train_command(job, args)), flush=True)
    if job.nproc or job.launcher:
        run_training(job, args)
    elif resumable:
        train.fit(train.resolve_train_config(resume=resumable[-1]))
    else:
        train.fit(train.resolve_train_config(config_file=job.config_file, init_from=init_from))


def _device(device: str) -> str:
    """A concrete device for this process: "auto" is CUDA when present, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _run_job(job: Job) -> None:
    """Train (or resume) one run and write its test_detail.json (called in the worker process).

    The worker holds the hash folder's lock while it does: a second campaign on the same runs folder waits for it
    (naming the holder on its stderr), then finds the run finished and neither trains nor tests it again."""
    with lock_folder(job.hash_root, f"train and test campaign run {job.key}", wait=True) as lock:
        if lock.previous:
            print(f"campaign worker: {job.hash_root}: took over the lock of a process that ended without releasing "
                  f"it ({describe_holder(lock.previous)})", file=sys.stderr, flush=True)
        if finished(job.hash_root) is not None:
            print(f"campaign worker: {job.key}: already trained and tested (by another campaign) in "
                  f"{finished(job.hash_root)}", file=sys.stderr, flush=True)
            return
        _run_job_locked(job)


def _run_job_locked(job: Job) -> None:
    log = job.hash_root / LOG_FILE
    t0 = time.time()
    with redirect_output(log):
        print(f"== campaign {job.key} ({job.hash}) {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
        if finished(job.hash_root) is None and not any((r / runs.RESULTS_FILE).is_file()
                                                       for r in attempts(job.hash_root)):
            _train(job)
        trained = [r for r in attempts(job.hash_root) if (r / runs.RESULTS_FILE).is_file()]
        if not trained:
            raise RuntimeError(f"{job.hash_root}: training ended without results.json")
        run_dir = trained[-1]
        cfg = load_run_config(run_dir / runs.CONFIG_FILE)
        best = run_dir / runs.CHECKPOINT_DIR / "best.pt"
        ckpt = best if best.is_file() else run_dir / runs.CHECKPOINT_DIR / "last.pt"
        model, _ = load_model(ckpt)
        params = count_params(build_model(cfg.model))  # trainable as configured (frozen backbones)
        dcfg = from_dict(DataConfig, job.test_data)
        t1 = time.time()
        dev = _device(job.device)
        paper = job.profile == "paper"  # the CPU profiles keep their one-thread, in-process test pass
        if paper and dev == "cpu" and job.nproc > 1:  # the run's processes are done: their cores run the test pass
            torch.set_num_threads(max(torch.get_num_threads(), job.nproc))
        test = evaluate_model(model, dcfg, cfg.geometry,
                              batch_size=cfg.train.eval_batch_size or cfg.train.batch_size, device=dev,
                              seed=cfg.train.seed, num_workers=cfg.train.num_workers if paper else 0,
                              gpus=max(1, job.nproc) if paper else 1)
        print(f"== test pass {job.key}: {test['n']} windows of {test['n_clips']} clips in {test['eval_s']:.1f} s "
              f"({test['windows_per_s']} windows/s on {test['test_pass']['gpus']} x {test['test_pass']['device']}, "
              f"{test['test_pass']['num_workers']} loader workers, {torch.get_num_threads()} threads); "
              f"{coverage_note(test)}", flush=True)
        results = json.loads((run_dir / runs.RESULTS_FILE).read_text())
        wall = float(results.get("elapsed_s") or 0.0) + (time.time() - t1)
        write_json_atomic(run_dir / TEST_DETAIL, {
            "key": job.key, "hash": job.hash, "checkpoint": str(ckpt), "test": test, "params": params,
            "wall_s": round(wall, 2), "eval_s": round(time.time() - t1, 2), "job_s": round(time.time() - t0, 2),
            "torch_threads": torch.get_num_threads()})
        print(f"== done {job.key}: test accuracy_1 {test['accuracy_1']:.4f}, tol1 {test['accuracy_1_tol1']:.4f}",
              flush=True)
    shutil.copy2(log, run_dir / LOG_FILE)


def run_jobs(hash_roots: Sequence[str | os.PathLike]) -> int:
    """The worker: run the jobs of the given hash folders in order; stop at the first failure (exit status 1, the
    error and its traceback at the end of that run's ``train.log``)."""
    jobs = [Job.read(h) for h in hash_roots]
    for job in jobs:
        try:
            _run_job(job)
        except BaseException as e:  # noqa: BLE001 - reported to the parent through the log and the exit code
            with open(job.hash_root / LOG_FILE, "a") as f:
                f.write(f"== FAILED {job.key}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            print(f"campaign worker: {job.key} failed: {e}", file=sys.stderr)
            return 1
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# ensure_runs


def ensure_runs(keys: Iterable[str], profile: str = "mini", *, runs_root: str | os.PathLike | None = None,
                data_root: str | os.PathLike | None = None, device: str = "auto", seed: int = 0,
                parallel: int | None = None, progress: bool = True, gpus: int | None = None,
                recipe: str | None = None, overrides: Sequence[str] = (),
                launcher: Sequence[str] | None = None, train: bool = True, regenerate_protocol: bool = False,
                allow_missing_clips: bool = False, specs: Mapping[str, RunSpec] | None = None
                ) -> dict[str, RunRecord]:
    """Train what is missing for ``keys`` (dependencies first), reuse finished runs, resume unfinished ones.

    ``specs``: the runs ``keys`` name (default: the profile's plan; a study passes its own, e.g.
    :mod:`paperlib.paper.plateau_study`). Before the first run that loads the upstream extractor weights of the
    synthetic profiles, those are trained (:func:`ensure_extractors`).

    ``train=False`` trains nothing: the records of the keys whose runs have finished, the others left out (what a
    campaign that runs over several sessions has so far).

    ``gpus``: processes per run (None: one per CUDA GPU at ``paper``, else 1). A run is trained through torchrun with
    that many processes at ``paper`` or when ``gpus > 1`` (in its worker's process otherwise), or through
    ``launcher``, a command prefix that starts ``gpus`` ranks itself (SLURM's srun, multi-node torchrun; see
    :mod:`paperlib.paper.campaign_runner`). The number of processes is part of the campaign hash (the lr and the
    global batch scale with it); the device is not (``device`` "auto": CUDA when present). ``recipe`` and
    ``overrides``: as for :func:`resolve_spec`. At ``paper`` everything the runs to train will read is checked first
    (:func:`paperlib.paper.inputs.check_paper_inputs`: the table of inputs is printed, and one FileNotFoundError
    names what is missing); ``regenerate_protocol`` lets missing split lists and fixed-offset CSVs be made here (not
    the official windows), ``allow_missing_clips`` drops listed valid/test clips absent on disk (counted).

    Returns a :class:`RunRecord` per requested key (aliases share their run). A failed run raises RuntimeError with
    the path of its log and its last lines.
    """
    profiles.profile(profile)  # an unknown profile is refused before anything else
    keys = list(dict.fromkeys(keys))
    specs = plan(profile) if specs is None else specs
    order = closure(keys, specs)
    root = runs_root_path(runs_root)
    if parallel is None:
        parallel = 2 if profile in ("mini", "full") else 1
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    world = process_count(profile, gpus)
    configs = {k: resolve_spec(specs[k], profile, data_root=data_root, runs_root=root, seed=seed, device=device,
                               recipe=recipe, overrides=overrides) for k in order}
    memo: dict[str, str] = {}
    hashes = {k: spec_hash(specs[k], profile, specs, seed=seed, device=device, data_root=data_root,
                           world_size=world, _memo=memo, _configs=configs) for k in order}
    # one run per hash, in a folder named after the first key of the plan with the same spec (aliases differ only in
    # their key), so asking for an alias first or the full key first finds the same folder
    owner: dict[str, str] = {}
    for k in order:
        owner.setdefault(hashes[k], k)
    hroot = {h: hash_root(root, profile, canonical_key(specs[k], specs), h) for h, k in owner.items()}
    done = {h: finished(p) for h, p in hroot.items()}
    # what to train: each requested run that has not finished, and its parents in turn while they have not finished
    # or (when training) were restored from committed files without a checkpoint to fine-tune from
    # (paperlib.paper.results.restore_runs); the parents of a finished run are not needed
    need: set[str] = set()
    for k in keys:
        child = False
        while k is not None and hashes[k] not in need:
            run = done[hashes[k]]
            if run is not None and not (child and train and restored(run)):
                break
            need.add(hashes[k])
            child, k = True, specs[k].init_from
    for h in need:
        if done[h] is not None:  # a restored parent: trained again (the committed files stay where they were)
            print(f"[campaign] {done[h].parent.name}: restored without a checkpoint, which a run to train "
                  "fine-tunes from: trained again", flush=True)
            shutil.rmtree(done[h])
            done[h] = None
    todo = [h for h in dict.fromkeys(hashes[k] for k in order) if h in need]
    if todo and train:
        if profile != "paper":  # one generator at a time per profile: a second campaign waits, then reuses the sets
            with lock_folder(root / "data" / profile, "generate the synthetic data sets", wait=True):
                ensure_data(profile, {specs[owner[h]].setting for h in todo} |
                            {specs[owner[h]].test_setting for h in todo if specs[owner[h]].test_setting},
                            runs_root=root, progress=progress, workers=parallel)
            ensure_extractors([specs[owner[h]] for h in todo], [configs[owner[h]] for h in todo], profile, root,
                              progress)
        tests = {h: test_data_config(specs[owner[h]], profile, data_root=data_root, runs_root=root, seed=seed,
                                     cfg=configs[owner[h]], overrides=overrides) for h in todo}
        if profile == "paper":
            check_paper_inputs([configs[owner[h]] for h in todo], [tests[h] for h in todo],
                               regenerate_protocol=regenerate_protocol, allow_missing_clips=allow_missing_clips)
        if progress and profile in ("mini", "full"):
            todo_keys = [owner[h] for h in todo]
            left = wall_minutes({k: run_minutes(specs[k], profile) for k in todo_keys},
                                {k: specs[k].init_from for k in todo_keys}, parallel)
            print(f"[campaign] {len(todo)} of {len(done)} runs to train at seed {seed}: about {left:.0f} minutes left "
                  f"with {parallel} workers, every run at its cap (an upper bound; step costs measured with two "
                  "workers on a quiet machine, paperlib.paper.budget)", flush=True)
        nproc = world if (profile == "paper" or world > 1) and not launcher else 0
        jobs = {h: _write_job(specs[owner[h]], configs[owner[h]], tests[h], h, hroot, hashes, profile, device,
                              nproc, list(launcher or ())) for h in todo}
        _prepare_fixed_offsets([(configs[owner[h]], tests[h]) for h in todo])
        schedule(jobs, {h: hashes[specs[owner[h]].init_from] if specs[owner[h]].init_from else None for h in todo},
                 parallel, progress)
    out: dict[str, RunRecord] = {}
    for k in keys:
        h = hashes[k]
        run_dir = finished(hroot[h])
        if run_dir is None and not train:
            continue
        if run_dir is None:
            raise RuntimeError(f"{k}: no finished run under {hroot[h]} after training")
        _check_run_config(run_dir, h, specs[k], profile, memo, data_root)
        out[k] = _record(specs[k], run_dir, reused=h not in todo)
    return out


def ensure_extractors(specs: Sequence[RunSpec], configs: Sequence[RunConfig], profile: str, root: Path,
                      progress: bool = True) -> list[Path]:
    """Train the upstream extractor weights (:mod:`paperlib.engine.upstream`) that the runs about to train load and
    that do not exist yet (once per input geometry; a second campaign waits for the first's and reuses them).
    Returns the report files of the upstream trainings these runs use."""
    reports = []
    for spec, cfg in zip(specs, configs):
        if not cfg.model.visual_weights or not spec.pretrained_extractors:
            continue
        up = upstream_config(profile, spec.clip_sec)
        if up is None:
            continue
        files = upstream_paths(up, root / UPSTREAM_DIR)
        if str(files.visual) != cfg.model.visual_weights:
            continue  # weights given by an override: not ours to make
        if files.report not in reports:
            ensure_upstream(up, root / UPSTREAM_DIR, cache=root / UPSTREAM_DIR / "clips", progress=progress)
            reports.append(files.report)
    return reports


def with_repeats(records: Mapping[str, Any], profile: str, *, seed: int = 0, train: bool = True,
                 **run: Any) -> dict[str, Any]:
    """``records`` (``{key: RunRecord}`` at ``seed``) with each key that ``profile`` repeats
    (:func:`paperlib.paper.plan.repeated_keys`) replaced by a :class:`RepeatedRecord` over ``seed`` and ``seed`` +
    each of the profile's ``repeat_seeds``, trained (or reused) by :func:`ensure_runs` at those seeds. ``train=False``
    trains nothing and takes the seeds that have finished. ``run``: the other options of :func:`ensure_runs`. Records
    that are not :class:`RunRecord` s (checkpoint evaluations) are left as they are."""
    keys = [k for k in repeated_keys(records, profile) if isinstance(records[k], RunRecord)]
    out = dict(records)
    if not keys:
        return out
    by_seed: dict[str, dict[int, RunRecord]] = {k: {seed: records[k]} for k in keys}
    for offset in profiles.profile(profile).repeat_seeds:
        got = ensure_runs(keys, profile, seed=seed + offset, train=train, **run)
        for k, rec in got.items():
            by_seed[k][seed + offset] = rec
    out.update({k: RepeatedRecord(by_seed[k], planned_seeds(profile, k, seed)) for k in keys})
    return out


def process_count(profile: str, gpus: int | None) -> int:
    """Processes per run: ``gpus``, or by default one per CUDA GPU at ``paper`` (at least 1) and 1 elsewhere."""
    if gpus is None or gpus == 0:
        return max(1, torch.cuda.device_count()) if profile == "paper" else 1
    if gpus < 0:
        raise ValueError(f"gpus must be >= 0 (0: the profile's default), got {gpus}")
    return int(gpus)


def missing_inputs(keys: Iterable[str], profile: str, *, data_root: str | os.PathLike | None = None,
                   runs_root: str | os.PathLike | None = None, seed: int = 0, recipe: str | None = None,
                   overrides: Sequence[str] = (), **check: Any) -> dict[str, list[str]]:
    """Why each of ``keys`` cannot be trained here, by key (keys that can are absent): at ``paper`` no data_root, or
    an input that the key's run or one of its parents reads is missing, incomplete or unreadable (the messages of
    :func:`paper_input_problems`; ``check``: its ``regenerate_protocol``, ``allow_missing_clips``). The synthetic
    profiles generate their data: nothing is missing there."""
    if profile != "paper":
        return {}
    out: dict[str, list[str]] = {}
    for key in keys:
        try:
            cfgs, tests = _inputs([key], profile, data_root, runs_root, seed, recipe, overrides)
        except ValueError as e:  # no data_root, or no official extractor for an input length
            out[key] = [str(e)]
            continue
        problems = paper_input_problems(cfgs, tests, **check)
        if problems:
            out[key] = problems
    return out


def check_inputs(keys: Iterable[str], profile: str, *, data_root: str | os.PathLike | None = None,
                 runs_root: str | os.PathLike | None = None, seed: int = 0, recipe: str | None = None,
                 overrides: Sequence[str] = (), show: bool = False, **check: Any) -> None:
    """Raise one error naming everything ``keys`` (and their parents) need and miss at ``paper``: ValueError without
    data_root, FileNotFoundError for missing, incomplete or unreadable inputs (:func:`check_paper_inputs`, which
    prints the table of inputs when ``show`` or when something is wrong; ``check``: its ``regenerate_protocol``,
    ``allow_missing_clips``)."""
    if profile == "paper":
        check_paper_inputs(*_inputs(keys, profile, data_root, runs_root, seed, recipe, overrides), show=show,
                           **check)


def _inputs(keys: Iterable[str], profile: str, data_root: Any, runs_root: Any, seed: int, recipe: str | None,
            overrides: Sequence[str]) -> tuple[list[RunConfig], list[DataConfig]]:
    """The resolved configs of ``keys`` and their parents, and the data configs of the splits they are tested on."""
    specs = plan(profile)
    chain = closure(keys, specs)
    cfgs = [resolve_spec(specs[k], profile, data_root=data_root, runs_root=runs_root, seed=seed, recipe=recipe,
                         overrides=overrides) for k in chain]
    tests = [test_data_config(specs[k], profile, data_root=data_root, runs_root=runs_root, seed=seed, cfg=c,
                              overrides=overrides) for k, c in zip(chain, cfgs)]
    return cfgs, tests


def _check_run_config(run_dir: Path, h: str, spec: RunSpec, profile: str, memo: Mapping[str, str],
                      data_root: str | os.PathLike | None) -> None:
    """The run's own config.json must hash to its folder's campaign hash (a moved or edited folder is refused)."""
    cfg = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    parent = memo[spec.init_from] if spec.init_from else None
    env = run_dir / runs.ENV_FILE
    world = int(json.loads(env.read_text()).get("world_size", 1)) if env.is_file() else 1
    got = campaign_hash(cfg, data_identity(profile, spec.setting, data_root), parent, spec.test_setting,
                        spec_test_identity(spec, profile, data_root), world_size=world)
    if got != h:
        raise RuntimeError(f"{run_dir}: its config.json hashes to {got}, not to its folder's campaign hash {h}; the "
                           "folder was edited or the plan changed; move it away to retrain")


def _write_job(spec: RunSpec, cfg: RunConfig, test_cfg: DataConfig, h: str, hroot: Mapping[str, Path],
               hashes: Mapping[str, str], profile: str, device: str, nproc: int = 0,
               launcher: Sequence[str] = ()) -> Job:
    """Write the job of a hash folder (campaign.json) and the resolved config its run trains on (config.json: the
    spec's config placed in that folder, ``train.run_root`` and ``train.name`` set)."""
    path = hroot[h]
    path.mkdir(parents=True, exist_ok=True)
    job = Job(key=spec.key, hash=h, hash_root=path, device=device, test_data=to_dict(test_cfg),
              parent_root=hroot[hashes[spec.init_from]] if spec.init_from else None,
              spec=dataclasses.asdict(spec), profile=profile, nproc=nproc, launcher=list(launcher))
    placed = dataclasses.replace(cfg.train, run_root=str(path), name=slug(spec.key).replace(".", "p"))
    write_json_atomic(job.config_file, to_dict(dataclasses.replace(cfg, train=placed)))
    job.write()
    return job


def _prepare_fixed_offsets(configs: Iterable[tuple[RunConfig, DataConfig]]) -> None:
    """Write the fixed-offset CSVs of every valid/test configuration (a run's config and its test split's data
    config) before runs start in parallel (two processes generating the same CSV would race)."""
    seen = set()
    for cfg, tdc in configs:
        for dcfg, split in ((cfg.data, "valid"), (cfg.data, "test"), (tdc, "test")):
            geo = cfg.geometry
            key = (dcfg.root, geo.num_classes, geo.clip_sec, geo.max_off_sec, split, dcfg.fixed_offsets)
            if key in seen or not dcfg.fixed_offsets:
                continue
            seen.add(key)
            build_dataset(dcfg, geo, split, seed=cfg.train.seed)
