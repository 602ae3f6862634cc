"""Provenance of a result: code version (git sha, dirty flag), library and codec versions, hardware.

The one collector every run directory (``env.json``), study cache and report header uses.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(path: str | Path | None = None) -> dict[str, Any]:
    """``{"sha", "dirty", "root"}`` of the git checkout holding ``path`` (default: this package); None outside git."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    sha = _git(["rev-parse", "HEAD"], cwd)
    if sha is None:
        return {"sha": None, "dirty": None, "root": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"sha": sha, "dirty": bool(status) if status is not None else None,
            "root": _git(["rev-parse", "--show-toplevel"], cwd)}


def cpu_model() -> str | None:
    """The CPU's model name (float kernels, and so trained weights, differ between CPUs), or None where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def float_settings() -> dict[str, Any]:
    """The torch settings that decide which float kernels a run uses: a re-run with other values (or on another CPU)
    trains other weights from the same config."""
    import torch

    out: dict[str, Any] = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": None,
    }
    try:
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - provenance must never break a run
        pass
    return out


def env_info(device: str | None = None) -> dict[str, Any]:
    """Code version, library and codec versions, host and hardware (never raises: provenance must not break a run)."""
    import torch

    info: dict[str, Any] = {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "argv": list(sys.argv),
        "git": git_info(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "device": device,
    }
    try:
        info["float"] = float_settings()
    except Exception as e:  # noqa: BLE001
        info["float"] = f"unavailable ({type(e).__name__})"
    for mod in ("torchvision", "torchaudio", "numpy", "av"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - provenance must never break a run
            info[mod] = f"unavailable ({type(e).__name__})"
    try:
        import av

        # FFmpeg libraries bundled with PyAV, e.g. {"libavcodec": "61.19.100", ...}
        info["ffmpeg"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
        info["ffmpeg_version"] = getattr(av, "ffmpeg_version_info", None)
    except Exception as e:  # noqa: BLE001
        info["ffmpeg"] = f"unavailable ({type(e).__name__})"
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cudnn"] = torch.backends.cudnn.version()
    return info
