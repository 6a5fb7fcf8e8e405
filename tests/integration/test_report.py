"""The listening report: built by the report stage from a tiny fake run, logged to MLflow, and
opened in headless Chromium (every player loads its file, every image decodes, the page is not
blank)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from pipeline.audio.io import write_audio
from pipeline.report import build_report, collect_samples
from tests.browser import find_chromium, run_chromium, serve
from tests.conftest import tiny_params

pytestmark = pytest.mark.integration

SR, BAR = 8000, 8000  # 1 s bars
METRICS = {
    "novelty": {
        "generated.fraction_similar": 0.25,
        "generated.median_score": 0.43123456,
        "generated.count": 3,
        "valid.fraction_similar": 0.125,
        "valid.median_score": 0.51,
        "valid.count": 8,
    },
    "frechet": {
        "generated.distance": 12.5,
        "valid.distance": 3.25,
        "embedding": "log-mel",
        "generated.fixed": 360.0,
        "generated.fixed.ci_low": 300.0,
        "generated.fixed.ci_high": 450.0,
        "valid.fixed": 200.0,
        "confidence": 0.9,
    },
    "rhythm": {"generated.fraction_downbeat_onset": 0.9, "valid.fraction_downbeat_onset": 1.0},
    "threshold": 0.1,
    "counts": {"generated": 6, "train": 12, "valid": 5},
}


# --- the fake run --------------------------------------------------------------------------
def _tone(bars: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(bars * BAR) / SR
    audio = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) * np.exp(-(t % 0.25) * 8)
    return (audio + 0.02 * rng.standard_normal(len(t)))[None].astype(np.float32)


def make_fake_run(root: Path, run_id: str) -> dict[str, Path]:
    samples = root / "samples"
    files = []
    layout = [
        ("bars/bar_000.wav", "bar", 1, BAR),
        ("bars/bar_001.wav", "bar", 1, BAR),
        ("loops/loop_000.wav", "loop", 2, BAR),
        ("walks/slerp.wav", "walk", 4, BAR),
        ("tempo/interpolation_100bpm.wav", "tempo", 4, 9600),
        ("classes/class_01/bar_000.wav", "class", 1, BAR),
    ]
    for i, (path, kind, bars, bar_samples) in enumerate(layout):
        audio = _tone(bars, i)
        if bar_samples != BAR:
            audio = np.resize(audio, (1, bars * bar_samples))
        write_audio(samples / path, audio, SR)
        files.append(
            {"path": path, "kind": kind, "title": f"{kind} <{i}>", "bars": bars,
             "bar_samples": bar_samples, "bpm": 60.0 * 2 * BAR / bar_samples}
        )  # fmt: skip
    write_audio(samples / "interpolation.wav", _tone(4, 3), SR)
    generated = np.stack([_tone(1, 10 + i) for i in range(6)])
    np.savez(  # the scored bars of a two-class model, the classes in turn
        samples / "generated.npz", bars=generated, labels=np.arange(6) % 2, sample_rate=np.int64(SR)
    )
    splits = root / "splits"
    splits.mkdir()
    valid = np.stack([_tone(1, 20 + i) for i in range(5)])
    np.savez(
        splits / "valid.npz", bars=np.round(valid * 32767).astype(np.int16),
        labels=np.zeros(5, np.int64), sample_rate=np.int64(SR),
    )  # fmt: skip
    (samples / "samples.json").write_text(
        json.dumps({"sample_rate": SR, "bar_samples": BAR, "bpm": 120.0, "files": files})
    )
    models = root / "models"
    models.mkdir()
    steps = np.arange(1, 41)
    pd.DataFrame(
        {"step": steps, "loss_d": 1 / steps, "loss_g": np.log(steps), "gp": 0.1 + 0 * steps}
    ).to_csv(models / "losses.csv", index=False)
    run = {
        "mlflow_run_id": run_id,
        "mlflow_tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "run_dir": "data/checkpoints/wavegan-test",
        "steps": 40,
        "train_bars": 12,
        "config": {"arch": "wavegan", "loss": "wgan-gp", "sample_rate": SR, "length": BAR},
    }
    (models / "train_run.json").write_text(json.dumps(run))
    metrics = root / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    return {
        "samples": samples, "splits": splits, "run": models / "train_run.json", "metrics": metrics
    }  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """The report stage run on a fake run whose training has a real (SQLite) MLflow run."""
    import mlflow

    from pipeline.monitoring import tracking
    from pipeline.stages import report as stage

    root = tmp_path_factory.mktemp("fake-run")
    previous_uri, previous_cwd = mlflow.get_tracking_uri(), Path.cwd()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)  # artifacts go to root/mlartifacts
        params = tiny_params()
        tracking.setup(params["train"]["experiment"])
        with mlflow.start_run() as run:
            run_id = run.info.run_id
        paths = make_fake_run(root, run_id)
        out = root / "report"
        args = argparse.Namespace(
            samples_dir=paths["samples"], splits_dir=paths["splits"], metrics=paths["metrics"],
            train_run=paths["run"], losses=None, out_dir=out, ceiling=None,
        )  # fmt: skip
        try:
            stage.main(args, params)
            artifacts = mlflow.MlflowClient().list_artifacts(run_id, "report")
        finally:
            mlflow.set_tracking_uri(previous_uri)
            os.chdir(previous_cwd)
    return {"out": out, "artifacts": [a.path for a in artifacts], **paths}


# --- the folder ------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append((tag, value))


def test_report_folder_is_self_contained_and_logged_to_mlflow(report):
    out = report["out"]
    page = (out / "index.html").read_text()
    parser = _Links()
    parser.feed(page)
    audio = [v for tag, v in parser.links if tag == "audio"]
    images = [v for tag, v in parser.links if tag == "img"]
    # 6 players; real vs generated, 6 spectrograms and the loss curves
    assert len(audio) == 6 and len(images) == 8
    for _, link in parser.links:
        if link.startswith("#"):
            continue
        assert "://" not in link and not link.startswith("/"), link
        assert (out / link).is_file(), link
    # The headline leads: the verdict, its table first of all tables, then real and generated
    # bars' spectrograms side by side.
    assert page.index('<section id="headline">') < page.index("<table")
    assert page.index("<table") == page.index('<table class="metrics headline">')
    assert "not learned yet: 2 of 3 targets met; missed: near-copies" in page
    assert "1.80× [1.50×, 2.25×]" in page and "≥ 80 %" in page
    assert images[0] == "img/real_vs_generated.png"
    assert page.index("real_vs_generated.png") < page.index('<section id="run">')
    # how many bars were scored, and the spread: a generated bar per class beside real bars
    assert "Scored on 6 generated bars against 12 training and 5 held-out real bars." in page
    assert "[low, high]: the 90 % bootstrap interval of the generated number" in page
    assert "One generated bar per class" in page and "from the 6 scored bars" in page
    assert "one colour scale (-90 to 0 dB re full scale)" in page
    # Metrics: every generated number beside its real reference; unknown metrics too.
    assert "held-out real (reference)" in page
    assert re.search(r"median_score</th><td[^>]*>0\.4312</td><td[^>]*>0\.51</td>", page)
    assert re.search(r"distance</th><td[^>]*>12\.5</td><td[^>]*>3\.25</td>", page)
    assert "log-mel" in page and "threshold" in page
    assert "&lt;0&gt;" in page  # titles are escaped
    assert "report/index.html" in report["artifacts"]
    assert {"report/audio", "report/img"} <= set(report["artifacts"])


def test_report_finds_audio_without_a_listing_and_replaces_an_old_report(report, tmp_path):
    samples = tmp_path / "samples"
    shutil.copytree(report["samples"], samples)
    (samples / "samples.json").unlink()
    items = collect_samples(samples)
    kinds = sorted(item.kind for item in items)
    assert kinds == ["bar", "bar", "class", "loop", "tempo", "track", "walk"]
    out = tmp_path / "report"
    (out / "stale").mkdir(parents=True)
    index = build_report(out, samples, metrics=None, losses=None, run=None)
    assert index.is_file() and not (out / "stale").exists()
    assert "No metrics were given" in index.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]


def test_file_names_with_url_characters_keep_working_links(tmp_path):
    """'#', '?', '%' and spaces in a file name are part of the path, not a fragment or query."""
    samples = tmp_path / "samples"
    name = "kick #1 ?50% off.wav"
    write_audio(samples / "bars" / name, np.zeros((1, BAR), np.float32), SR)
    out = tmp_path / "report"
    index = build_report(out, samples, metrics=None, losses=None, run=None)

    links = LinkParser()
    links.feed(index.read_text())
    audio_links = [link for link in links.urls if link.endswith(".wav")]
    image_links = [link for link in links.urls if link.endswith(".png") and "bars/" in link]
    assert audio_links and image_links
    for link in audio_links + image_links:
        assert not {"#", "?", " "} & set(link), link  # nothing a browser would cut or split
        assert (out / unquote(link)).is_file(), link
    assert unquote(audio_links[0]) == f"audio/bars/{name}"


class LinkParser(HTMLParser):
    """The src and href values of a page, as a browser reads them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for key, value in attrs if key in ("src", "href") and value]


# --- in a browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


# Waits until every <audio> has its metadata (or an error) and every <img> is complete, then
# writes what it found into <pre id="report-check"> for --dump-dom to return.
CHECK_SCRIPT = """
(function () {
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  function settled() {
    return all("audio").every(function (a) { return a.readyState >= 1 || a.error; }) &&
           all("img").every(function (i) { return i.complete; });
  }
  function report() {
    var result = {
      title: document.title,
      audio: all("audio").map(function (a) {
        return {id: a.id, src: a.getAttribute("src"), readyState: a.readyState,
                error: a.error ? a.error.code : null, duration: a.duration};
      }),
      images: all("img").map(function (i) {
        return {id: i.id, src: i.getAttribute("src"), naturalWidth: i.naturalWidth};
      }),
      toc: all("nav#toc a").length
    };
    var pre = document.createElement("pre");
    pre.id = "report-check";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
  var start = Date.now();
  (function poll() {
    if (settled() || Date.now() - start > 20000) { report(); } else { setTimeout(poll, 50); }
  })();
})();
"""
# Controls: a player and an image whose files do not exist must be reported as broken.
CONTROLS = (
    '<audio id="control-audio" preload="metadata" src="audio/missing.wav"></audio>'
    '<img id="control-img" src="img/missing.png" alt="missing">'
)


def test_report_renders_in_chromium_with_working_players_and_images(report, chromium, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(report["out"], served)
    page = (served / "index.html").read_text()
    check = page.replace("</body>", f"{CONTROLS}<script>{CHECK_SCRIPT}</script></body>")
    (served / "check.html").write_text(check)
    with serve(served) as url:
        dom = run_chromium(
            chromium, tmp_path / "profile", "--virtual-time-budget=30000", "--dump-dom",
            url + "check.html",
        )  # fmt: skip
    found = re.search(r'<pre id="report-check">(.*?)</pre>', dom, re.S)
    assert found, f"the check script did not run; page was:\n{dom[:2000]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["title"].startswith("bargan report")
    assert result["toc"] >= 6  # the table of contents script ran

    players = [a for a in result["audio"] if not a["id"].startswith("control")]
    assert len(players) == 6
    expected = {f["path"]: f["bars"] * f["bar_samples"] / SR for f in _listing(report)}
    for player in players:
        assert player["error"] is None and player["readyState"] >= 1, player
        path = player["src"].removeprefix("audio/")
        assert player["duration"] == pytest.approx(expected[path], abs=0.01), player
    images = [i for i in result["images"] if not i["id"].startswith("control")]
    assert len(images) == 8 and all(i["naturalWidth"] > 0 for i in images), images

    control_audio = next(a for a in result["audio"] if a["id"] == "control-audio")
    assert control_audio["error"] is not None or control_audio["readyState"] == 0
    assert next(i for i in result["images"] if i["id"] == "control-img")["naturalWidth"] == 0


def test_report_screenshot_is_not_blank(report, chromium, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    with serve(report["out"]) as url:
        run_chromium(
            chromium, tmp_path / "profile", "--window-size=1280,1600", f"--screenshot={shot}",
            url + "index.html",
        )  # fmt: skip
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels.std() > 0.1  # a blank page is one colour
    rgb = np.round(pixels * 255).astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 200  # text, tables and spectrograms, not a flat page
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.02  # there is dark ink on the page


def _listing(report) -> list[dict]:
    return json.loads((report["samples"] / "samples.json").read_text())["files"]
