"""The pip pins (requirements.txt) and the conda pins (environment.yml) name the same packages at the same versions."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_requirements_and_environment_yml_agree():
    req = _pins((ROOT / "requirements.txt").read_text())
    env = _pins((ROOT / "environment.yml").read_text())
    assert req, "no pins parsed from requirements.txt"
    assert req == env, (f"pins differ: only pip {set(req.items()) - set(env.items())}, "
                        f"only conda {set(env.items()) - set(req.items())}")


def test_paper_pins_present():
    req = _pins((ROOT / "requirements.txt").read_text())
    assert req["torch"] == "2.9.1" and req["torchvision"] == "0.24.1" and req["torchaudio"] == "2.9.1"
    for name in ["av", "papermill", "jupyterlab", "nbstripout", "seaborn", "pandas", "tqdm", "tensorboard", "pytest"]:
        assert name in req, f"{name} is not pinned"


def test_every_pin_has_a_reason():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"requirements.txt line has no reason: {line!r}"
