"""The train stage reads every TrainConfig setting from params.yaml by the field's own name."""

from __future__ import annotations

import numpy as np
import yaml

from pipeline.params import SCHEMA_PATH, load_params
from pipeline.stages.train import FROM_DATA, params_fields, train_config
from tests.conftest import REPO


def test_every_train_setting_is_a_params_key_in_the_schema() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["train"]
    assert set(params_fields()) <= set(schema["properties"])
    assert set(params_fields()) <= set(schema["required"])
    assert not FROM_DATA & set(params_fields())


def test_train_config_takes_each_field_from_its_key() -> None:
    section = load_params(REPO / "params.yaml")["train"]
    config = train_config(section, np.zeros((2, 1, 4000), np.float32), 8000, 3)
    for key in params_fields():
        expected = tuple(section[key]) if key == "betas" else section[key]
        assert getattr(config, key) == expected, key
    assert (config.sample_rate, config.length, config.channels, config.num_classes) == (
        8000, 4000, 1, 3
    )  # fmt: skip
