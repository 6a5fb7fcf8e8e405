"""The dataset registry: every real entry is complete, and the validator names what is not."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.data import layout
from pipeline.data.registry import (
    DIGEST_LENGTHS,
    RegistryError,
    load_dataset,
    load_registry,
    parse_entry,
    registry_dir,
)
from pipeline.data.splits import PublishedSplitError, read_published_splits
from pipeline.stages import analyze
from tests.conftest import REPO

REGISTRY = REPO / "datasets"
ENTRIES = sorted(REGISTRY.glob("*.yaml"))


def test_registry_has_the_papers_datasets_and_the_vggish_weights():
    names = {path.stem for path in ENTRIES}
    assert {"sc09", "groove", "egmd", "gtzan", "vggish-weights"} <= names
    assert load_dataset("vggish-weights", REGISTRY).kind == "model"


@pytest.mark.parametrize("path", ENTRIES, ids=[p.stem for p in ENTRIES])
def test_every_entry_has_checksums_a_licence_and_a_citation(path: Path):
    dataset = parse_entry(path)  # schema + cross-field checks
    assert dataset.archives
    for archive in dataset.archives:
        checksum = archive.checksum
        assert len(checksum.value) == DIGEST_LENGTHS[checksum.algorithm]
        assert checksum.source.strip(), f"{path}: {archive.filename}: say who published it"
        assert archive.urls and all(url.startswith(("http://", "https://")) for url in archive.urls)
    assert dataset.licence["name"].strip() and dataset.licence["text"].strip()
    assert dataset.citation.strip()
    assert dataset.homepage.startswith(("http://", "https://"))


def test_registry_loads_as_a_whole():
    assert set(load_registry(REGISTRY)) == {path.stem for path in ENTRIES}


def _good_entry() -> dict:
    return yaml.safe_load((REGISTRY / "groove.yaml").read_text())


def _write(tmp_path: Path, data: dict, name: str = "broken") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("remove", "key"),
    [
        (("citation",), "<top level>"),
        (("licence",), "<top level>"),
        (("licence", "text"), "licence"),
        (("archives", 0, "checksum"), "archives.0"),
        (("archives", 0, "checksum", "source"), "archives.0.checksum"),
    ],
)
def test_entry_without_checksum_licence_or_citation_fails_naming_file_and_key(
    tmp_path, remove, key
):
    data = _good_entry()
    parent = data
    for part in remove[:-1]:
        parent = parent[part]
    del parent[remove[-1]]
    path = _write(tmp_path, data)
    with pytest.raises(RegistryError) as err:
        parse_entry(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: missing key")
    assert repr(remove[-1]) in message


def test_bad_values_are_named(tmp_path):
    data = _good_entry()
    data["archives"][0]["checksum"]["value"] = "abc123"
    with pytest.raises(RegistryError, match=r"archives\.0\.checksum\.value: a sha256 digest"):
        parse_entry(_write(tmp_path, data))
    data = _good_entry()
    data["archives"][0]["checksum"]["algorithm"] = "crc32"
    with pytest.raises(RegistryError, match=r"archives\.0\.checksum\.algorithm"):
        parse_entry(_write(tmp_path, data))
    data = _good_entry()
    data["classes"] = {"from": "filename", "pattern": "^(.*)_"}
    with pytest.raises(RegistryError, match="group named class"):
        parse_entry(_write(tmp_path, data))
    data = copy.deepcopy(_good_entry())
    data["licence "] = "typo"
    with pytest.raises(RegistryError, match="unknown key"):
        parse_entry(_write(tmp_path, data))


def test_unknown_entry_lists_the_known_ones(tmp_path):
    _write(tmp_path, _good_entry(), "groove")
    with pytest.raises(RegistryError, match=r"no such registry entry \(known: groove\)"):
        load_dataset("nope", tmp_path)


def test_registry_dir_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("BARGAN_REGISTRY_DIR", raising=False)
    assert registry_dir(Path("datasets")) == Path("datasets")
    monkeypatch.setenv("BARGAN_REGISTRY_DIR", str(tmp_path))
    assert registry_dir(Path("datasets")) == tmp_path


def test_time_signatures_count_quarter_notes():
    assert layout.quarter_beats("4-4") == 4
    assert layout.quarter_beats("3/4") == 3
    assert layout.quarter_beats("6-8") == 3
    assert layout.quarter_beats("5-8") is None  # not a whole number of quarter notes
    assert layout.quarter_beats("") is None


def test_overrides_columns_are_analyzes():
    assert layout.OVERRIDE_COLUMNS == analyze.OVERRIDE_COLUMNS


def test_groove_layout_puts_files_under_their_style_with_known_tempi(tmp_path):
    """A miniature of the Groove archive: classes from info.csv's style, tempo and meter from
    its columns, performances without audio and odd meters left out; analyze reads the result."""
    dataset = load_dataset("groove", REGISTRY)
    root = tmp_path / "unpacked" / "groove"
    rows = [
        ("drummer1/s1/1_funk_120_beat_4-4.wav", "funk/groove1", "120", "4-4", "train"),
        ("drummer1/s1/2_jazz_90_beat_6-8.wav", "jazz/groove2", "90", "6-8", "validation"),
        ("drummer2/s1/3_rock_100_beat_5-8.wav", "rock/groove3", "100", "5-8", "test"),
        ("", "rock/fill", "100", "4-4", "train"),  # MIDI only
    ]
    for audio, *_ in rows:
        if audio:
            (root / audio).parent.mkdir(parents=True, exist_ok=True)
            (root / audio).write_bytes(b"RIFF")
    (root / "drummer1/s1/1_funk_120_beat_4-4.mid").write_bytes(b"MThd")
    columns = ["audio_filename", "style", "bpm", "time_signature", "split"]
    table = pd.DataFrame(rows, columns=columns)
    table.to_csv(root / "info.csv", index=False)

    placements = layout.plan(tmp_path / "unpacked", dataset)
    assert [(p.dest, p.label) for p in placements] == [
        ("funk/drummer1/s1/1_funk_120_beat_4-4.wav", "funk"),
        ("jazz/drummer1/s1/2_jazz_90_beat_6-8.wav", "jazz"),
        ("rock/drummer2/s1/3_rock_100_beat_5-8.wav", "rock"),
    ]
    overrides = layout.tempo_overrides(tmp_path / "unpacked", dataset, placements)
    out = tmp_path / "out"
    layout.move_into(placements, out)
    overrides.to_csv(out / "overrides.csv", index=False)
    read = analyze.read_overrides(out)
    assert read == {
        "funk/drummer1/s1/1_funk_120_beat_4-4.wav": analyze.Override(120.0, 0.0, 4),
        "jazz/drummer1/s1/2_jazz_90_beat_6-8.wav": analyze.Override(90.0, 0.0, 3),
    }
    # the publisher's split, "validation" read as ours "valid", as analyze reads it
    splits = layout.published_splits(tmp_path / "unpacked", dataset, placements)
    splits.to_csv(out / "splits.csv", index=False)
    assert read_published_splits(out) == {
        "funk/drummer1/s1/1_funk_120_beat_4-4.wav": "train",
        "jazz/drummer1/s1/2_jazz_90_beat_6-8.wav": "valid",
        "rock/drummer2/s1/3_rock_100_beat_5-8.wav": "test",
    }


def test_sc09_keeps_speech_commands_speaker_disjoint_lists(tmp_path):
    """A miniature of Speech Commands: only the digits are kept, and the validation and
    testing lists decide their splits (every other digit file is train)."""
    dataset = load_dataset("sc09", REGISTRY)
    root = tmp_path / "unpacked"
    files = ["zero/a_nohash_0.wav", "zero/b_nohash_0.wav", "one/c_nohash_0.wav", "yes/d.wav"]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"RIFF")
    (root / "validation_list.txt").write_text("zero/b_nohash_0.wav\nyes/d.wav\n")
    (root / "testing_list.txt").write_text("one/c_nohash_0.wav\n")
    placements = layout.plan(root, dataset)
    assert sorted(p.dest for p in placements) == sorted(files[:3])  # "yes" is not a digit
    splits = layout.published_splits(root, dataset, placements)
    assert splits.values.tolist() == [
        ["one/c_nohash_0.wav", "test"],
        ["zero/a_nohash_0.wav", "train"],
        ["zero/b_nohash_0.wav", "valid"],
    ]
    (root / "testing_list.txt").unlink()
    with pytest.raises(layout.LayoutError, match=r"sc09\.yaml: splits: the archives hold no test"):
        layout.published_splits(root, dataset, placements)


def test_an_unknown_published_split_name_is_refused(tmp_path):
    dataset = load_dataset("groove", REGISTRY)
    root = tmp_path / "unpacked" / "groove"
    root.mkdir(parents=True)
    (root / "a.wav").write_bytes(b"RIFF")
    table = {"audio_filename": ["a.wav"], "style": ["funk"], "split": ["holdout"]}
    pd.DataFrame(table).to_csv(root / "info.csv", index=False)
    placements = layout.plan(tmp_path / "unpacked", dataset)
    with pytest.raises(layout.LayoutError, match=r"names split 'holdout'.*splits\.names"):
        layout.published_splits(tmp_path / "unpacked", dataset, placements)


def test_a_bad_splits_csv_is_named_with_its_line(tmp_path):
    (tmp_path / "splits.csv").write_text("path,split\na.wav,train\nb.wav,dev\n")
    with pytest.raises(PublishedSplitError, match=r"splits.csv: line 3: split 'dev' is not one"):
        read_published_splits(tmp_path)
    (tmp_path / "splits.csv").write_text("path\na.wav\n")
    with pytest.raises(PublishedSplitError, match=r"missing columns \['split'\]"):
        read_published_splits(tmp_path)
    assert read_published_splits(tmp_path / "nowhere") == {}


def test_a_class_that_is_no_folder_name_is_refused(tmp_path):
    dataset = load_dataset("groove", REGISTRY)
    root = tmp_path / "unpacked" / "groove"
    root.mkdir(parents=True)
    (root / "a.wav").write_bytes(b"RIFF")
    pd.DataFrame({"audio_filename": ["a.wav"], "style": [".."]}).to_csv(
        root / "info.csv", index=False
    )
    with pytest.raises(layout.LayoutError, match=r"classes: '\.\.' \(for a\.wav\) cannot be"):
        layout.plan(tmp_path / "unpacked", dataset)
