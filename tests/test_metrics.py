"""Metric maths on hand-made cases (paperlib.engine.evaluate), and evaluate() invariants on a stand-in model."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.engine import evaluate as ev


def _onehot_logits(preds, c):
    """Logits whose ranking is preds[i][0] > preds[i][1] > ... > all other classes."""
    lg = torch.zeros(len(preds), c)
    for i, order in enumerate(preds):
        for r, cls in enumerate(order):
            lg[i, cls] = 10.0 - r
    return lg


def test_top1_and_top5_by_hand():
    c = 21
    # targets 3, 7, 0, 20; top-1 correct for rows 0 and 3 only
    lg = _onehot_logits([[3, 1, 2], [6, 5, 4, 3, 7], [2, 1, 5, 6, 7, 0], [20]], c)
    tg = torch.tensor([3, 7, 0, 20])
    assert ev.accuracy(lg, tg, 1) == pytest.approx(0.5)
    # top-5: row 1 has 7 at rank 5 (hit), row 2 has 0 at rank 6 (miss)
    assert ev.accuracy(lg, tg, 5) == pytest.approx(0.75)


def test_tolerance_counts_neighbours_once_and_clamps_edges():
    c = 21
    lg = _onehot_logits([[4], [2], [6], [1], [19], [18], [10]], c)
    tg = torch.tensor([3, 3, 3, 0, 20, 20, 3])
    hits = ev.topk_hits(lg, tg, k=1, tol=1).tolist()
    # 4 = t+1 yes; 2 = t-1 yes; 6 no; t=0: window {0,1} -> 1 yes; t=20: window {19,20} -> 19 yes, 18 no; 10 no
    assert hits == [True, True, False, True, True, False, False]
    assert ev.accuracy(lg, tg, 1, tol=1) == pytest.approx(4 / 7)


def test_top5_tolerance_no_double_counting():
    c = 21
    # all of t-1, t, t+1 in the top-5: still one hit, accuracy is 1, not 3
    lg = _onehot_logits([[9, 10, 11, 0, 1]], c)
    assert ev.accuracy(lg, torch.tensor([10]), 5, tol=1) == 1.0
    # top-5 far away: miss
    lg = _onehot_logits([[0, 1, 2, 3, 4]], c)
    assert ev.accuracy(lg, torch.tensor([10]), 5, tol=1) == 0.0
    assert ev.accuracy(lg, torch.tensor([5]), 5, tol=1) == 1.0  # 4 is t-1


def test_three_classes_k5_clamped_and_tolerance_trivial():
    lg = _onehot_logits([[0], [2]], 3)
    tg = torch.tensor([1, 1])
    assert ev.accuracy(lg, tg, 5) == 1.0  # k clamped to C
    assert ev.accuracy(lg, tg, 1, tol=1) == 1.0  # why 3-class tolerance is meaningless
    assert ev.accuracy(lg, tg, 1) == 0.0


def test_offset_metrics_keys_and_loss():
    lg = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    tg = torch.tensor([0, 1])
    m = ev.offset_metrics(lg, tg)
    assert set(m) == {"accuracy_1", "accuracy_5", "accuracy_1_tol1", "accuracy_5_tol1", "loss", "n"}
    assert m["accuracy_1"] == 0.5 and m["n"] == 2
    expected = (-(2 - math.log(math.exp(2) + 2)) - (0 - math.log(2 + math.e))) / 2
    assert m["loss"] == pytest.approx(expected, rel=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="targets must lie"):
        ev.accuracy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        ev.accuracy(torch.zeros(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="targets for"):
        ev.accuracy(torch.zeros(2, 3), torch.tensor([0]))


def test_confusion_and_per_class():
    preds = np.array([0, 1, 1, 2, 2, 2])
    tg = np.array([0, 1, 2, 2, 2, 0])
    cm = ev.confusion_matrix(preds, tg, 4)
    assert cm.tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    pc = ev.per_class_accuracy(preds, tg, 4)
    assert pc[:3].tolist() == [0.5, 1.0, 2 / 3] and math.isnan(pc[3])
    groups = ["dog", "dog", "cat", "cat", "cat", "dog"]
    assert ev.per_group_accuracy(preds, tg, groups) == {"cat": 2 / 3, "dog": 2 / 3}
    assert ev.per_group_accuracy(preds, tg, [0, 0, 0, 0, 1, 1]) == {"0": 0.75, "1": 0.5}


def test_mean_std():
    r = ev.mean_std([{"a": 1.0, "b": 2.0, "flag": True}, {"a": 3.0, "b": 2.0, "flag": False}])
    assert r == {"a": 2.0, "a_std": 1.0, "b": 2.0, "b_std": 0.0}


def test_shard_indices_partition():
    shards = [ev.shard_indices(11, r, 3) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))


class _Probe(nn.Module):
    """Stand-in model: logits from a linear map of the audio mean + dropout (to check eval mode and RNG)."""

    def __init__(self, c: int):
        super().__init__()
        self.lin = nn.Linear(2, c)
        self.drop = nn.Dropout(0.5)

    def forward(self, video, audio):
        x = torch.stack([video.mean(dim=(1, 2, 3, 4)), audio.mean(dim=(1, 2, 3))], 1)  # (B, 2)
        return self.drop(self.lin(x))


def _batches(n=10, bs=4, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, n, bs):
        b = min(bs, n - s)
        out.append({"video": torch.randn(b, 2, 3, 4, 4, generator=g), "audio": torch.randn(b, 1, 4, 6, generator=g),
                    "target": torch.randint(0, c, (b,), generator=g), "label": [f"k{(s + i) % 2}" for i in range(b)]})
    return out


def test_evaluate_is_eval_mode_deterministic_and_preserves_rng_and_mode():
    torch.manual_seed(0)
    model = _Probe(5).train()
    batches = _batches()
    state = torch.get_rng_state()
    pystate = random.getstate()
    a = ev.evaluate(model, batches, num_classes=5, detail=True)
    b = ev.evaluate(model, batches, num_classes=5, detail=True)
    assert a == b  # dropout off in eval mode
    assert model.training  # mode restored
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == pystate
    # the metrics equal the pure functions applied to the eval-mode logits
    model.eval()
    with torch.no_grad():
        lg = torch.cat([model(x["video"], x["audio"]) for x in batches])
    tg = torch.cat([x["target"] for x in batches])
    assert a["accuracy_1"] == pytest.approx(ev.accuracy(lg, tg, 1))
    assert a["n"] == 10 and len(a["per_offset_class_accuracy"]) == 5
    assert sum(map(sum, a["confusion_matrix"])) == 10
    assert set(a["per_content_class_accuracy"]) == {"k0", "k1"}


def test_evaluate_passes_mean_std():
    model = _Probe(5)
    res = ev.evaluate_passes(model, lambda i: _batches(seed=i), passes=3, num_classes=5)
    singles = [ev.evaluate(model, _batches(seed=i), num_classes=5)["accuracy_1"] for i in range(3)]
    assert res["accuracy_1"] == pytest.approx(np.mean(singles))
    assert res["accuracy_1_std"] == pytest.approx(np.std(singles))
    assert res["iter_times"] == 3 and len(res["passes"]) == 3


def test_evaluate_rejects_wrong_class_count():
    with pytest.raises(ValueError, match="expected"):
        ev.evaluate(_Probe(5), _batches(), num_classes=21)


def test_predict_returns_per_item_outputs_in_order():
    """The evaluation loop both the metrics and per-item reports start from: per-item logits, argmax predictions,
    targets and the batches' metadata, in order; eval mode and RNG untouched, modes restored."""
    torch.manual_seed(0)
    model = _Probe(5).train()
    batches = _batches()
    for b, off in zip(batches, ([0.5, -1.0, 0.25, 2.0], [1.5, 0.0, -0.5, 1.0], [0.75, -2.0])):
        b["offset_sec"] = torch.tensor(off, dtype=torch.float64)
        b["id"] = [f"clip{i}" for i in range(len(off))]
    state = torch.get_rng_state()
    out = ev.predict(model, batches)
    assert model.training and torch.equal(torch.get_rng_state(), state)
    model.eval()
    with torch.no_grad():
        lg = torch.cat([model(x["video"], x["audio"]) for x in batches])
    torch.testing.assert_close(out["logits"], lg)
    assert torch.equal(out["pred"], lg.argmax(1))
    assert torch.equal(out["target"], torch.cat([x["target"] for x in batches]))
    assert out["label"] == [lab for x in batches for lab in x["label"]]
    assert out["offset_sec"] == [0.5, -1.0, 0.25, 2.0, 1.5, 0.0, -0.5, 1.0, 0.75, -2.0]  # Python floats, exact
    assert len(out["id"]) == 10 and out["v_start_sec"] is None  # what the batches do not carry
    assert ev.evaluate(model, batches, num_classes=5, detail=True) == ev.summarise(out, 5, detail=True)
