"""The repository's own folders, independent of the working directory: its root and the default ``runs/`` (where
training runs, synthetic data and artefact outputs go unless a caller names another folder)."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The repository root (the folder holding ``paperlib/``), independent of the working directory."""
    return Path(__file__).resolve().parents[2]


def runs_dir() -> Path:
    return repo_root() / "runs"
