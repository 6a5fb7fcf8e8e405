from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.params import ParamsError, flatten, load_params, validate_params
from tests.conftest import REPO


@pytest.fixture
def params():
    return load_params(REPO / "params.yaml")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "lr_g", 0, "train.lr_g"),
        ("train", "betas", [0.5], "train.betas"),
        ("bars", "channels", 3, "bars.channels"),
        ("bars", "sample_rate", 4000, "bars.sample_rate"),
        ("analyze", "method", "aubio", "analyze.method"),
        ("analyze", "min_bpm", 200, "analyze.min_bpm"),  # above max_bpm
        ("split", "valid_fraction", 0.5, "split.valid_fraction"),  # valid + test >= 1
        ("demo", "styles", ["polka"], "demo.styles.0"),
        ("sample", "score_bars", 1, "sample.score_bars: 1 is less than the minimum of 2"),
        ("evaluate", "classifier", "inception_v3", "evaluate.classifier"),
        ("evaluate", "classifier_epochs", 0, "evaluate.classifier_epochs"),
        ("evaluate", "ndb_features", "vggish", "evaluate.ndb_features"),
        ("evaluate", "inception_splits", 0, "evaluate.inception_splits"),
    ],
)
def test_bad_values_are_named(params, section, key, value, message):
    bad = copy.deepcopy(params)
    bad[section][key] = value
    if (section, key) == ("split", "valid_fraction"):
        bad["split"]["test_fraction"] = 0.5
    with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
        validate_params(bad, "params.yaml")


def test_griffin_lim_from_zero_phase_needs_an_iteration(params):
    bad = copy.deepcopy(params)
    bad["train"]["model"]["specgan"].update(phase="griffin-lim", griffin_lim_iters=0)
    with pytest.raises(ParamsError, match=r"train\.model\.specgan\.griffin_lim_iters"):
        validate_params(bad, "params.yaml")
    bad["train"]["model"]["specgan"]["phase"] = "pghi"  # PGHI alone
    validate_params(bad, "params.yaml")


def test_missing_section_and_bad_yaml(tmp_path, params):
    del params["train"]
    with pytest.raises(ParamsError, match=r"missing key.*train"):
        validate_params(params)
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": "x",
    }


def test_checked_in_params_are_valid():
    validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))


def test_no_validation_split_is_refused_with_the_reason(params):
    params["split"]["valid_fraction"] = 0
    with pytest.raises(ParamsError, match=r"split\.valid_fraction: 0 holds no bars out"):
        validate_params(params, "params.yaml")


@pytest.mark.parametrize("audio_dir", ["my corpus", "data/raw/demo", "~/music/ä"])
def test_corpus_paths_with_spaces_are_accepted(params, audio_dir):
    params["data"]["audio_dir"] = audio_dir
    validate_params(params)


def test_a_corpus_path_with_shell_characters_names_the_rule(params):
    params["data"]["audio_dir"] = "data/`rm`"
    with pytest.raises(ParamsError, match=r"data\.audio_dir: 'data/`rm`' is not allowed: .*"):
        validate_params(params)


def test_fetched_corpus_needs_a_dataset(params):
    params["data"]["audio_dir"] = "data/raw/fetched"
    with pytest.raises(ParamsError, match=r"fetch\.dataset: none, but data\.audio_dir is"):
        validate_params(params)
    params["fetch"]["dataset"] = "groove"
    validate_params(params)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("vggish-weights", r"fetch\.models: 'vggish-weights' is not of type 'array'"),
        (["vggish-weights", "vggish-weights"], r"fetch\.models: .* has non-unique elements"),
        (["VGGish"], r"fetch\.models\.0: 'VGGish' is not allowed: the name of a registry entry"),
        ([7], r"fetch\.models\.0: 7 is not of type 'string'"),
    ],
)
def test_bad_fetch_models_are_named(params, models, message):
    params["fetch"]["models"] = models
    with pytest.raises(ParamsError, match=message):
        validate_params(params, "params.yaml")


def test_fetch_models_is_required_and_a_list_of_names(params):
    params["fetch"]["models"] = ["vggish-weights", "other.v2"]
    validate_params(params)
    del params["fetch"]["models"]
    with pytest.raises(ParamsError, match=r"params\.yaml: fetch: missing key .*'models'"):
        validate_params(params, "params.yaml")


def test_fetched_vggish_weights_need_their_entry_in_fetch_models(params):
    path = "data/pretrained/vggish-weights/vggish-10086976.pth"
    params["evaluate"]["vggish_weights"] = path
    with pytest.raises(
        ParamsError,
        match=r"evaluate\.vggish_weights: .* add vggish-weights to fetch\.models",
    ):
        validate_params(params, "params.yaml")
    params["fetch"]["models"] = ["vggish-weights"]
    validate_params(params)
    params["fetch"]["models"] = []
    params["evaluate"]["vggish_weights"] = "elsewhere/vggish-10086976.pth"  # not fetch's to place
    validate_params(params)
