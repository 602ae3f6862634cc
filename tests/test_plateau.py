"""The plateau study (paperlib.engine.plateau) and its command ``python -m paperlib plateau``, at a few steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paperlib.commands import plateau as command
from paperlib.engine import plateau


def test_windows_follow_the_official_sampler():
    grid = np.linspace(-2.0, 2.0, 21)
    rng = np.random.default_rng(0)
    for _ in range(50):
        it = plateau.sample_window(rng, 3, grid, np.arange(21), 5.0, 0.05)
        assert 0 <= it.clip < 3 and it.offset_sec == pytest.approx(round(grid[it.target], 2))
        assert 0 <= it.v_start_i <= 125 and 0 <= it.a_start_i <= 80000  # both windows inside the 10-s clip
    items = plateau.fixed_test_items(2, 4, grid, 5.0)
    assert len(items) == 8 and items == plateau.fixed_test_items(2, 4, grid, 5.0)  # fixed by the seed
    for it in items:
        assert it.a_start_i == max(0, int((it.v_start_i / plateau.FPS + it.offset_sec) * plateau.SR))


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()  # a run sets one torch thread for the process; the other tests keep theirs
    yield
    torch.set_num_threads(n)


def test_command_runs_a_few_steps_and_appends_a_row(tmp_path, keep_threads):
    args = ["--name", "t", "--data", "tokens", "--max-steps", "4", "--test-items", "32", "--batch", "4",
            "--log-every", "2", "--init", "anchor", "--aux", "1", "--sync-aux", "1", "--cache", "",
            "--out", str(tmp_path)]
    assert command.main(args) == 0
    row = json.loads((tmp_path / "table.jsonl").read_text())
    assert row["name"] == row["lever"] == "t" and row["steps"] == 4 and row["classes"] == 21
    assert 0.0 <= row["top1"] <= row["pm1"] <= 1.0 and row["chance_top1"] == pytest.approx(1 / 21)
    curve = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve[:-1]] == [2, 4] and curve[-1]["final"]["top1"] == row["top1"]
    # the same configuration through the study's API gives the same numbers
    again = plateau.run(plateau.PlateauConfig(name="t2", data="tokens", max_steps=4, test_items=32, batch=4,
                                              log_every=2, init="anchor", aux=1.0, sync_aux=1.0, cache="",
                                              out=str(tmp_path)))
    assert again["top1"] == row["top1"] and again["train_loss"] == row["train_loss"]


def test_dispatcher_knows_the_command(capsys):
    from paperlib.commands import main

    with pytest.raises(SystemExit) as exit_:
        main(["plateau", "--help"])
    assert exit_.value.code == 0 and "--name" in capsys.readouterr().out
