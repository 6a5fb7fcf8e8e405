"""Presets: they apply cleanly, validate, and train at reduced size with the preset's data shape."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from dvc.utils.hydra import apply_overrides
from ruamel.yaml import YAML

from pipeline.params import flatten, load_params
from pipeline.presets import (
    apply_preset,
    apply_to_file,
    load_preset,
    main,
    merge_into_text,
    preset_names,
)
from pipeline.stages.train import train_config
from pipeline.train import load_checkpoint, load_generator, train_gan
from tests.conftest import REPO

# preset -> (sample rate, samples per bar, channels, arch, conditional)
EXPECTED = {
    "wavegan": (16000, 16384, 1, "wavegan", False),
    "wavegan-drums": (16000, 16384, 1, "wavegan", False),
    "beatgan": (14700, 14112, 2, "wavegan", False),
    "bergan": (16000, 32000, 1, "melgan", False),
    "specgan-genre": (16000, 32000, 1, "specgan", True),
}
# small enough for a 2-core CPU; everything else stays as the preset has it
REDUCED = {"model_dim": 2, "batch_size": 4, "steps": 2, "checkpoint_every": 1, "log_every": 1}
REDUCED_MODEL = {"melgan": {"scales": 2}, "specgan": {"griffin_lim_iters": 2}}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def base_params() -> dict:
    return load_params(REPO / "params.yaml")


def test_preset_list_and_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert preset_names() == sorted(EXPECTED)
    keys = set()
    for name in preset_names():
        overlay, meta = load_preset(name)
        assert "http" in meta["source"] and meta["description"]
        # every preset sets the same keys (outside the per-architecture model blocks), so
        # applying one after another gives the same setup as applying it alone
        flat = {k for k in flatten(overlay) if not k.startswith("train.model.")}
        keys = keys or flat
        assert flat == keys, name
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED) and "github.com/adrienchaton/BERGAN" in out
    with pytest.raises(ValueError, match="known presets: beatgan"):
        load_preset("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_applies_and_validates(name: str, base_params: dict, tmp_path: Path) -> None:
    merged = apply_preset(base_params, name)
    sample_rate, length, channels, arch, conditional = EXPECTED[name]
    bars, train = merged["bars"], merged["train"]
    assert train["preset"] == name and train["arch"] == arch
    assert train["conditional"] is conditional
    assert bars["sample_rate"] == sample_rate and bars["channels"] == channels
    assert round(sample_rate * 60 / bars["bpm"] * bars["beats_per_bar"]) == length
    assert merged["analyze"]["meters"] == [bars["beats_per_bar"]]
    assert merged["sample"] == base_params["sample"]  # sections the preset does not name
    # applied after another preset, the result is the same as applied alone
    other = "bergan" if name != "bergan" else "beatgan"
    again = apply_preset(apply_preset(base_params, other), name)
    for key, value in flatten(merged).items():
        if not key.startswith("train.model."):
            assert flatten(again)[key] == value, key

    # the command rewrites the file in place, keeping comments, and validates it
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    assert main(["apply", name, "--params", str(path)]) == 0
    text = path.read_text()
    assert "# One section per stage" in text and f"preset: {name}" in text
    assert load_params(path) == merged


def test_apply_refuses_an_invalid_result(base_params: dict, tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "bad.yaml").write_text(
        yaml.safe_dump({"source": "https://example.org", "train": {"arch": "transformer"}})
    )
    path = tmp_path / "params.yaml"
    original = (REPO / "params.yaml").read_text()
    path.write_text(original)
    with pytest.raises(ValueError, match=r"train\.arch"):
        apply_to_file("bad", path, presets_dir=presets)
    assert path.read_text() == original


def _key_spans(text: str) -> dict[str, range]:
    """Dotted key of every value that is not a mapping -> the lines from its key's line up to
    the next key's (a value may be wrapped over several lines)."""
    starts: list[tuple[int, str | None]] = []

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            line = node.lc.key(key)[0]
            if isinstance(value, dict):
                starts.append((line, None))
                walk(value, f"{prefix}{key}.")
            else:
                starts.append((line, f"{prefix}{key}"))

    walk(YAML(typ="rt").load(text), "")
    ends = [line for line, _ in starts[1:]] + [len(text.splitlines())]
    return {key: range(line, end) for (line, key), end in zip(starts, ends, strict=True) if key}


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Flattened keys whose value (type included: 120 is not 120.0) differs."""
    flat_old, flat_new = flatten(old), flatten(new)
    assert flat_old.keys() == flat_new.keys()
    return {
        k for k in flat_old if (type(flat_old[k]), flat_old[k]) != (type(flat_new[k]), flat_new[k])
    }


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :].rstrip() for line in text.splitlines() if "#" in line]


def _overlay(name: str) -> dict[str, Any]:
    overlay, _meta = load_preset(name)
    overlay["train"]["preset"] = name
    return flatten(overlay)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_apply_rewrites_only_the_lines_of_changed_values(name: str) -> None:
    original = (REPO / "params.yaml").read_text()
    text = apply_to_file(name, REPO / "params.yaml", dry_run=True)
    changed = _changed_keys(yaml.safe_load(original), yaml.safe_load(text))
    assert "train.preset" in changed and changed <= _overlay(name).keys()
    old_lines, new_lines = original.splitlines(), text.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    diff = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert all(tag == "replace" for tag, *_ in diff), diff
    for spans, rewritten in (
        (_key_spans(original), {i for _, i1, i2, _, _ in diff for i in range(i1, i2)}),
        (_key_spans(text), {j for _, _, _, j1, j2 in diff for j in range(j1, j2)}),
    ):
        assert {spans[key][0] for key in changed} <= rewritten  # every changed value's line
        assert rewritten <= {i for key in changed for i in spans[key]}  # and nothing else


def test_presets_apply_after_dvc_exp_run_set_param(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    # what `dvc exp run -S train.lr_g=0.0003` does to params.yaml (dvc/repo/experiments/queue/
    # base.py, _update_params): ruamel.yaml rewrites it with lists one item per line and nulls empty
    apply_overrides(str(path), ["train.lr_g=0.0003"])
    dvc_text = path.read_text()
    assert "  meters:                    # beats per" in dvc_text and "\n  - 3\n  - 4\n" in dvc_text
    assert load_params(path)["train"]["lr_g"] == 0.0003

    for name in preset_names():
        before_text = path.read_text()
        before = load_params(path)
        assert main(["apply", name, "--params", str(path)]) == 0, name
        text = path.read_text()
        after = load_params(path)  # validates
        overlay = _overlay(name)
        assert {k: flatten(after)[k] for k in overlay} == overlay, name
        assert _comments(text) == _comments(dvc_text), name
        # every key the preset leaves alone keeps its value and its line, DVC's layout included
        old_lines, new_lines = _key_spans(before_text), _key_spans(text)
        for key in flatten(before).keys() - _changed_keys(before, after):
            assert flatten(after)[key] == flatten(before)[key], (name, key)
            line = before_text.splitlines()[old_lines[key][0]]
            assert text.splitlines()[new_lines[key][0]] == line, (name, key)
        assert "  dedupe_threshold:          # drop bars" in text  # DVC's empty null stays


def test_an_empty_list_filled_by_a_preset_stays_on_its_line() -> None:
    text = "fetch:\n  models: []                 # weights\n\ndemo:\n  seed: 7\n"
    merged = merge_into_text(text, {"fetch": {"models": ["vggish-weights"]}})
    assert merged == "fetch:\n  models: [vggish-weights]   # weights\n\ndemo:\n  seed: 7\n"


def test_merge_into_text_writes_what_pyyaml_reads_back() -> None:
    text = merge_into_text("a: 1  # c\nb: x\n", {"a": 1e-05, "b": None})
    assert text.startswith("a: 1.0e-05 ") and "# c\nb: null\n" in text
    assert yaml.safe_load(text) == {"a": 1e-05, "b": None}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_trains_at_reduced_size(name: str, base_params: dict, tmp_path: Path) -> None:
    merged = apply_preset(base_params, name)
    sample_rate, length, channels, arch, conditional = EXPECTED[name]
    section = copy.deepcopy(merged["train"])
    section.update(REDUCED, device="cpu")
    for key, value in REDUCED_MODEL.get(arch, {}).items():
        section["model"][arch][key] = value

    n_bars, n_classes = 6, 3 if conditional else 0
    rng = np.random.default_rng(0)
    bars = (rng.standard_normal((n_bars, channels, length)) * 0.1).astype(np.float32)
    labels = np.arange(n_bars) % 3 if conditional else None
    config = train_config(section, bars, sample_rate, n_classes)
    assert (config.arch, config.sample_rate, config.length, config.channels) == (
        arch,
        sample_rate,
        length,
        channels,
    )
    assert config.n_critic == merged["train"]["n_critic"]
    assert config.betas == tuple(merged["train"]["betas"])

    result = train_gan(bars, labels, config, tmp_path)
    assert result.steps_done == 2
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in result.losses)
    if config.mode_seeking:
        assert all(r["mode_seeking"] > 0 for r in result.losses)
    # augmentation multiplies the training set; the checkpoint records the split's shape
    assert load_checkpoint(result.checkpoint_path)["extra"]["data_shape"] == list(bars.shape)

    generator, saved = load_generator(result.generator_path)
    assert saved == config
    z = generator.sample_latent(2, generator=torch.Generator().manual_seed(0), device="cpu")
    y = torch.tensor([0, 2]) if conditional else None
    audio = generator(z, y)
    assert audio.shape == (2, channels, length)
    assert audio.abs().max() <= 1.0
