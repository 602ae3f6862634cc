"""The campaign's plan and the artefacts agree by construction: the run keys the training artefacts actually ask for
(captured from the artefact functions themselves) are exactly ``contract_keys(profile)``, which is the plan's runs
that are not hidden parents; hidden runs exist only as parents (or their aliases); and one Profile record covers each
profile."""

from __future__ import annotations

import pytest

from paperlib.data import provision
from paperlib.paper import artefacts as A
from paperlib.paper.plan import canonical_key, contract_keys, plan
from paperlib.paper.profiles import PROFILES, Profile, profile

NAMES = ("smoke", "mini", "full", "paper")


class _Asked(Exception):
    """Raised by the stand-in for gather_records once an artefact has named its keys: nothing is trained."""


def _asked_keys(monkeypatch: pytest.MonkeyPatch, profile_name: str) -> dict[str, list[str]]:
    """The keys each training artefact passes to gather_records at ``profile_name``, by artefact name."""
    asked: dict[str, list[str]] = {}

    def gather(keys, profile, **kw):
        asked[current] = list(keys)
        assert profile == profile_name
        raise _Asked

    monkeypatch.setattr(A, "gather_records", gather)
    for current, fn in A.TRAINING_ARTEFACTS.items():
        with pytest.raises(_Asked):
            fn(profile=profile_name)
    return asked


@pytest.mark.parametrize("name", NAMES)
def test_the_keys_the_artefacts_ask_for_are_the_contract_keys(name, monkeypatch):
    asked = _asked_keys(monkeypatch, name)
    assert set(asked) == set(A.TRAINING_ARTEFACTS)  # every training artefact asked for runs
    specs = plan(name)
    for artefact, keys in asked.items():
        assert [k for k in keys if k not in specs] == [], artefact  # nothing outside the plan (it would stay empty)
    assert {k for keys in asked.values() for k in keys} == set(contract_keys(name))


@pytest.mark.parametrize("name", NAMES)
def test_contract_keys_are_the_plans_visible_runs_and_hidden_runs_are_parents(name):
    specs = plan(name)
    keys = contract_keys(name)
    assert len(keys) == len(set(keys))
    assert all(k in specs and not specs[k].hidden for k in keys)
    hidden = [k for k, s in specs.items() if s.hidden]
    assert hidden and set(hidden) == set(specs) - set(keys)
    # a hidden run exists only to be fine-tuned: it is a parent, or an alias of one (the default depth's dense-crop)
    parents = {canonical_key(specs[s.init_from], specs) for s in specs.values() if s.init_from}
    assert [k for k in hidden if canonical_key(specs[k], specs) not in parents] == []


def test_one_profile_record_per_profile():
    assert tuple(PROFILES) == NAMES
    kinds = {"base", "dense-wide", "sparse", "general", "c3", "scratch"}
    for name, p in PROFILES.items():
        assert isinstance(p, Profile) and p.name == name and profile(name) is p
        assert p.default_clip_sec in p.lengths and p.default_depth in p.depths  # the plan's aliases need them
        # paper: early stopping; "short-base" (2-s bases) is optional, "base" where absent
        assert set(p.steps) - {"short-base"} == (set() if name == "paper" else kinds)
        assert set(p.patience_steps) <= kinds | {"short-base"}
        assert p.synth is provision.SYNTH.get(name)  # the synthetic profiles' data, none at paper
        assert (p.budget_target_min is not None) == (name in ("mini", "full"))
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        profile("huge")
    with pytest.raises(ValueError, match="unknown profile"):
        plan("huge")
