"""What the codec-leakage study writes besides media: JSON files (written atomically) and the environment, with the
encoders used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av

from paperlib.core.io import atomic_output
from paperlib.core.provenance import env_info as _run_env_info


def env_info(device: str | None = None) -> dict[str, Any]:
    """``paperlib.core.provenance.env_info`` (git sha/dirty, torch/PyAV/FFmpeg versions, host) plus the encoders used
    here."""
    info = _run_env_info(device)
    codecs = {}
    for name in ("mpeg4", "libx264", "prores_ks", "aac", "pcm_s16le"):
        try:
            codecs[name] = av.codec.Codec(name, "w").long_name
        except Exception as e:  # noqa: BLE001 - record what is missing, do not fail
            codecs[name] = f"unavailable: {e}"
    info["encoders"] = codecs
    return info


def write_json(path: Path, data: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=str))
