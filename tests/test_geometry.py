"""One geometry for model and data: the offset grid rule, derived sizes, validation, and the model and the data
pipeline reading the same object."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paperlib.core.geometry import Geometry, class_grid, offset_to_target, official_max_offset
from paperlib.data.datasets import DataConfig, item_shapes
from paperlib.engine import config as RC
from paperlib.model.sparsesync import ModelConfig, input_shapes, nest_geometry


def test_paper_geometry_and_derived_sizes():
    g = Geometry()
    assert (g.frames, g.samples, g.spec_shape) == (125, 80000, (257, 626))
    assert g.step_sec == pytest.approx(0.2)
    assert np.allclose(g.grid(), np.round(np.arange(-2.0, 2.01, 0.2), 2))
    assert g.offset_to_target(0.0) == 10 and g.offset_to_target(-5.0) == 0 and g.offset_to_target(0.31) == 12


def test_official_offset_range_per_class_count():
    assert official_max_offset(3) == 1.0 and official_max_offset(21) == 2.0 and official_max_offset(41) == 2.0
    g3 = Geometry.for_classes(3)
    assert list(g3.grid()) == [-1.0, 0.0, 1.0] and g3.step_sec == 1.0
    assert list(class_grid(5, 2.0)) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert offset_to_target(0.9, 3, 1.0) == 2


def test_invalid_geometries_are_refused():
    with pytest.raises(ValueError, match="3-class"):
        Geometry(num_classes=3, max_off_sec=2.0).validate()
    with pytest.raises(ValueError, match="num_classes"):
        Geometry(num_classes=1).validate()
    with pytest.raises(ValueError, match="crop"):
        Geometry(crop=0).validate()
    with pytest.raises(ValueError, match="half the grid step"):
        DataConfig(audio_jitter_sec=0.06).validate(Geometry(num_classes=41))
    with pytest.raises(ValueError, match="infeasible"):
        DataConfig(min_clip_sec=6.0).validate(Geometry())


def test_model_and_data_read_one_geometry():
    cfg = RC.resolve("smoke", ["model.geometry.clip_sec=3.0", "model.geometry.crop=40", "data.min_clip_sec=4.0"])
    assert cfg.geometry is cfg.model.geometry
    assert not any(f.name in {"num_classes", "clip_sec", "crop", "fps"} for f in dataclasses.fields(DataConfig))
    assert input_shapes(cfg.model) == item_shapes(cfg.geometry) == {"video": (75, 3, 40, 40), "audio": (1, 129, 751)}
    with pytest.raises(KeyError, match="unknown config key"):
        RC.resolve("smoke", ["data.num_classes=3"])


def test_flat_model_configs_of_older_checkpoints_are_nested():
    flat = {"variant": "sparsesync", "num_classes": 3, "clip_sec": 2.0, "crop": 32, "depth": 1}
    nested = nest_geometry(flat)
    assert nested["geometry"] == {"num_classes": 3, "clip_sec": 2.0, "crop": 32, "max_off_sec": 1.0}
    assert nested["depth"] == 1 and "num_classes" not in nested
    assert nest_geometry(nested) is nested
    assert ModelConfig().geometry == Geometry()
