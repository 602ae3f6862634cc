"""Early stopping with patience in steps (paperlib.engine.loop.patience_ran_out, the Trainer's stop rule): runs that sit
on their plateau are never cut off by patience, only by their cap; learning runs stop ``patience_steps`` after their
last new best; a capped run says whether it was still improving."""

from __future__ import annotations

import math

import pytest

from paperlib.engine.config import RunConfig, TrainConfig, run_config_problems
from paperlib.engine.loop import PlateauDetector, last_progress_step, patience_ran_out, still_improving

C = 21
CHANCE = math.log(C)


def simulate(losses: dict[int, float], valid: dict[int, float], patience: int, cap: int, log_every: int = 20,
             eval_every: int = 100, valid_loss: dict[int, float] | None = None) -> tuple[str, int, int, int | None]:
    """Drive the engine's stop rules over hand-made curves, as the Trainer does: the training loss is logged every
    ``log_every`` steps (the value of the latest ``losses`` key at or before the step), valid is evaluated every
    ``eval_every`` steps, the rules are checked after each evaluation; with ``valid_loss`` a new lowest valid loss
    counts as progress too (``patience_counts_valid_loss``). Returns (reason, step, best_step, learning_since)."""
    plateau = PlateauDetector(C)
    best, best_step, low, low_step = -math.inf, -1, math.inf, -1
    for step in range(log_every, cap + 1, log_every):
        loss = losses[max(k for k in losses if k <= step)]
        plateau.update(step, loss, step * 0.1)
        if step % eval_every == 0 or step == cap:
            metric = valid[max(k for k in valid if k <= step)]
            if metric > best:
                best, best_step = metric, step
            if valid_loss is not None and (v := valid_loss[max(k for k in valid_loss if k <= step)]) < low:
                low, low_step = v, step
            progress = last_progress_step(best_step, low_step, valid_loss is not None)
            if patience_ran_out(step, progress, plateau.off_chance_since, patience):
                return "early_stopping", step, best_step, plateau.off_chance_since
    return "max_steps", cap, best_step, plateau.off_chance_since


def test_plateau_is_not_cut_off_by_patience():
    """Valid accuracy flickers at chance (its best set at step 100) while the loss stays on ln(C) for 1,500 steps:
    evaluation-count or step patience of 400 would stop it at step 500; the rule keeps it going until it learns."""
    losses = {0: CHANCE, 1500: 0.7 * CHANCE}
    valid = {0: 0.05, 100: 0.06, 200: 0.05, 1600: 0.20, 1800: 0.35, 2000: 0.36}
    reason, step, best_step, since = simulate(losses, valid, patience=400, cap=5000)
    assert since == 1500  # the step the training loss left chance
    assert best_step == 2000
    assert (reason, step) == ("early_stopping", 2400)  # 400 steps after the last new best


def test_stops_patience_steps_after_leaving_when_valid_never_improves_again():
    """A run leaves chance at step 300 but its valid metric never beats the best it had at step 100: patience counts
    from leaving, not from the stale best."""
    losses = {0: CHANCE, 300: 0.5 * CHANCE}
    valid = {0: 0.06, 100: 0.30, 200: 0.10}
    reason, step, best_step, since = simulate(losses, valid, patience=400, cap=5000)
    assert (since, best_step) == (300, 100)
    assert (reason, step) == ("early_stopping", 700)


def test_cap_ends_a_run_still_at_chance_and_one_still_improving():
    at_chance = simulate({0: CHANCE}, {0: 0.05, 300: 0.06}, patience=200, cap=3000)
    assert at_chance == ("max_steps", 3000, 300, None)
    assert not still_improving(3000, 300, 200)
    rising = {0: 0.1, 300: 0.15, 600: 0.2, 900: 0.25, 1200: 0.28, 1500: 0.3, 1800: 0.32}
    improving = simulate({0: CHANCE, 200: 0.5 * CHANCE}, rising, patience=400, cap=2000)
    assert improving[:2] == ("max_steps", 2000)
    assert still_improving(2000, improving[2], 400)


def test_a_falling_valid_loss_keeps_a_run_whose_top1_flickers():
    """AVST_dec's dense-crop base at full, as measured: top-1 on 72 valid items reached 0.347 at step 2,200 and only
    tied it since, while the valid loss kept falling. Top-1 alone stops it at 2,800 (patience 600); counting the
    valid loss as progress keeps it until the loss has not improved for 600 steps."""
    losses = {0: CHANCE, 1700: 0.7 * CHANCE}
    top1 = {0: 0.01, 1800: 0.208, 2000: 0.25, 2200: 0.347, 2400: 0.236, 2600: 0.333, 2800: 0.347, 3000: 0.32}
    vloss = {0: 3.07, 1800: 2.35, 2000: 2.28, 2200: 2.03, 2400: 1.95, 2600: 1.71, 2800: 1.67, 3000: 1.60,
             3200: 1.62, 3400: 1.61}
    assert simulate(losses, top1, patience=600, cap=4000, eval_every=200)[:3] == ("early_stopping", 2800, 2200)
    reason, step, best_step, _ = simulate(losses, top1, patience=600, cap=4000, eval_every=200, valid_loss=vloss)
    assert (reason, step, best_step) == ("early_stopping", 3600, 2200)  # 600 after the lowest loss (3,000)
    # the best checkpoint is still chosen by top-1 (best_step 2,200); a loss that never improves changes nothing
    flat = {0: 3.0}
    assert simulate(losses, top1, patience=600, cap=4000, eval_every=200, valid_loss=flat)[:2] == \
        ("early_stopping", 2800)


def test_the_trainer_records_the_lowest_valid_loss_and_counts_it_only_when_asked():
    """The Trainer's own bookkeeping (``note_valid_loss``, ``last_progress``) on its state: a lower loss moves the
    loss step, a NaN loss (an empty valid split) or a higher one does not; the flag decides whether it counts."""
    from types import SimpleNamespace

    from paperlib.engine.checkpointing import TrainState
    from paperlib.engine.train import Trainer

    state = TrainState(step=200, best_step=200)
    t = SimpleNamespace(state=state, tc=TrainConfig(patience_steps=600), last_valid={"loss": 2.0})
    Trainer.note_valid_loss(t)
    for step, loss in ((400, 1.5), (600, math.nan), (800, 1.7)):
        state.step, t.last_valid = step, {"loss": loss}
        Trainer.note_valid_loss(t)
    assert (state.best_valid_loss, state.best_loss_step) == (1.5, 400)
    assert Trainer.last_progress(t) == 200
    t.tc = TrainConfig(patience_steps=600, patience_counts_valid_loss=True)
    assert Trainer.last_progress(t) == 400


def test_a_fine_tune_that_never_sat_at_chance_counts_from_its_first_log():
    """A fine-tune of a learned model starts off chance: it is learning from its first logged step."""
    reason, step, best_step, since = simulate({0: 0.4 * CHANCE}, {0: 0.5, 200: 0.6}, patience=300, cap=5000)
    assert since == 20
    assert (reason, step) == ("early_stopping", 500)


def test_back_on_the_plateau_means_not_learning():
    p = PlateauDetector(C)
    p.update(20, 0.5 * CHANCE, 1.0)
    assert p.off_chance_since == 20
    p.update(40, CHANCE, 2.0)
    assert p.off_chance_since is None
    assert not patience_ran_out(10000, 0, p.off_chance_since, 10)
    restored = PlateauDetector(C)
    restored.load_state_dict(p.state_dict())
    assert restored.off_chance_since is None and restored.off_since == 20


@pytest.mark.parametrize("field, value", [("patience_steps", 0), ("patience_steps", -5),
                                          ("stop_after_plateau_steps", -1)])
def test_bad_patience_settings_are_named(field, value):
    cfg = RunConfig(train=TrainConfig(**{field: value}))
    problems = run_config_problems(cfg)
    assert any(f"train.{field}" in p for p in problems), problems


def test_the_runs_table_says_why_a_run_stopped():
    from paperlib.paper.campaign import stop_text

    assert stop_text("max_steps", True) == "cap (still improving)"
    assert stop_text("max_steps", False) == stop_text("max_steps") == "cap"
    assert stop_text("early_stopping") == "patience" and stop_text("left_plateau") == "left the plateau"
    assert stop_text(None) == ""


def test_a_capped_run_still_at_chance_is_not_called_improving():
    from paperlib.paper.campaign import improving_at_stop, stop_text

    at_chance = {"stop_reason": "max_steps", "still_improving": True, "learning_since_step": None}
    assert improving_at_stop(at_chance) is False and stop_text("max_steps", improving_at_stop(at_chance)) == "cap"
    assert improving_at_stop({"still_improving": True, "learning_since_step": 900}) is True
    assert improving_at_stop({"stop_reason": "max_steps"}) is None  # recorded before the field existed
