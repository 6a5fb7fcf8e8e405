"""Building the report folder: ``index.html`` plus the audio it plays and the images it shows.

The folder is self-contained: audio files are copied under ``audio/`` and figures written under
``img/``, and the page refers to them by relative paths, so the folder can be opened from disk,
served, zipped, or downloaded from MLflow as it is. (Embedding everything as base64 ``data:``
URIs was the alternative: one file, but ~1.33x the bytes in a single HTML document that the
browser must parse whole before it can play anything, and no way to download one clip.)

The folder is built beside ``out_dir`` and swapped in at the end, so a failed build never leaves
a half-written report and files from an older report never linger.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.audio.io import read_audio
from pipeline.fileio import replace_dir, staging_dir
from pipeline.metrics.headline import HEADLINE_KEY
from pipeline.report.figures import loss_curves_png
from pipeline.report.headline import BarComparison, headline_section
from pipeline.report.html import escape as _e
from pipeline.report.html import img as _img
from pipeline.report.html import section as _section
from pipeline.report.html import url as _url
from pipeline.report.tables import format_value, metric_tables
from pipeline.spectrograms import spectrogram_png

SECTIONS = (  # (kind, heading, intro)
    ("walk", "Latent walks", "One bar per step along a walk through random latent keyframes."),
    ("tempo", "At other tempos", "The walk re-rendered with Rubber Band; bar lines stay on grid."),
    ("track", "Tracks", ""),
    ("loop", "Loops", "One generated bar repeated, with crossfaded seams."),
    ("bar", "Random bars", "Single generated bars."),
    ("class", "Bars per class", "The same latents rendered as every class."),
)
KIND_BY_FOLDER = {
    "bars": "bar",
    "loops": "loop",
    "walks": "walk",
    "tempo": "tempo",
    "classes": "class",
}


@dataclass(frozen=True)
class AudioItem:
    path: str  # relative to the samples folder, '/'-separated
    kind: str  # bar | loop | walk | tempo | class | track
    title: str
    bar_samples: int | None = None
    bpm: float | None = None


def collect_samples(samples_dir: Path, listing: dict[str, Any] | None = None) -> list[AudioItem]:
    """The audio of a samples folder: from ``samples.json``'s ``files`` when present (written by
    the sample stage), otherwise every ``.wav`` found, its kind taken from its folder."""
    samples_dir = Path(samples_dir)
    files = (listing or {}).get("files")
    if files:
        return [
            AudioItem(
                path=f["path"],
                kind=f.get("kind", "track"),
                title=f.get("title", f["path"]),
                bar_samples=f.get("bar_samples"),
                bpm=f.get("bpm"),
            )
            for f in files
            if (samples_dir / f["path"]).is_file()
        ]
    bar_samples = (listing or {}).get("bar_samples")
    bpm = (listing or {}).get("bpm")
    items = []
    for path in sorted(samples_dir.rglob("*.wav")):
        relative = path.relative_to(samples_dir).as_posix()
        kind = KIND_BY_FOLDER.get(relative.split("/")[0], "track") if "/" in relative else "track"
        title = path.stem.replace("_", " ")
        items.append(AudioItem(relative, kind, title, bar_samples, bpm))
    return items


def build_report(
    out_dir: Path,
    samples_dir: Path,
    metrics: dict[str, Any] | None = None,
    losses: pd.DataFrame | None = None,
    run: dict[str, Any] | None = None,
    title: str = "bargan listening report",
    max_per_kind: int = 8,
    comparison: BarComparison | None = None,
) -> Path:
    """Write the report folder ``out_dir`` (replacing it) and return its ``index.html``. It
    opens with the headline of ``metrics`` and the spectrograms of ``comparison``'s bars."""
    out_dir, samples_dir = Path(out_dir), Path(samples_dir)
    listing = _read_json(samples_dir / "samples.json")
    items = _limit(collect_samples(samples_dir, listing), max_per_kind)
    staging = staging_dir(out_dir)
    try:
        body = [f'<header><h1>{_e(title)}</h1></header><nav id="toc"></nav>']
        body.append(headline_section(metrics, comparison, staging))
        body.append(_run_section(run, listing))
        body.append(_metrics_section(metrics))
        body.append(_losses_section(losses, staging))
        body.extend(_audio_sections(items, samples_dir, staging))
        page = _page(title, "\n".join(part for part in body if part))
        (staging / "index.html").write_text(page, encoding="utf-8")
        replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "index.html"


# --- sections --------------------------------------------------------------------------------
def _run_section(run: dict[str, Any] | None, listing: dict[str, Any]) -> str:
    run = run or {}
    config = run.get("config") or {}
    facts: list[tuple[str, Any]] = [
        ("MLflow run", run.get("mlflow_run_id")),
        ("training steps", run.get("steps")),
        ("training bars", run.get("train_bars")),
        ("architecture", config.get("arch")),
        ("loss", config.get("loss")),
        ("latent dim", config.get("latent_dim")),
        ("model dim", config.get("model_dim")),
        ("batch size", config.get("batch_size")),
        ("classes", config.get("num_classes")),
        ("clusters (self-conditioning)", len(config.get("cluster_classes") or []) or None),
        ("sample rate (Hz)", listing.get("sample_rate", config.get("sample_rate"))),
        ("bar length (samples)", listing.get("bar_samples", config.get("length"))),
        ("tempo (BPM)", listing.get("bpm")),
        ("beats per bar", listing.get("beats_per_bar")),
        ("run folder", run.get("run_dir")),
    ]
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(format_value(v))}</td></tr>"
        for k, v in facts
        if v is not None
    )
    return _section("run", "Run", f'<table class="facts">{rows}</table>') if rows else ""


def _metrics_section(metrics: dict[str, Any] | None) -> str:
    metrics = {k: v for k, v in (metrics or {}).items() if k != HEADLINE_KEY}
    if not metrics:
        return _section("metrics", "Metrics", "<p>No metrics were given.</p>")
    tables, settings = metric_tables(metrics)
    parts = []
    for table in tables:
        head = "".join(f"<th>{_e(h)}</th>" for h in ["measure", *table.header()])
        rows = "".join(
            "<tr><th>"
            + _e(measure)
            + "</th>"
            + "".join(
                f'<td class="num">{_e(format_value(values[c]))}</td>'
                if c in values
                else "<td></td>"
                for c in table.columns
            )
            + "</tr>"
            for measure, values in table.rows
        )
        parts.append(
            f'<h3>{_e(table.name)}</h3><table class="metrics"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    if settings:
        rows = "".join(
            f'<tr><th>{_e(k)}</th><td class="num">{_e(format_value(v))}</td></tr>'
            for k, v in settings.items()
        )
        parts.append(f'<h3>settings</h3><table class="metrics">{rows}</table>')
    intro = (
        "<p>Each generated number sits beside the same measure on held-out real bars, "
        "its reference.</p>"
    )
    return _section("metrics", "Metrics", intro + "".join(parts))


def _losses_section(losses: pd.DataFrame | None, staging: Path) -> str:
    if losses is None or losses.empty:
        return _section("losses", "Training losses", "<p>No loss log was given.</p>")
    try:
        width, height = loss_curves_png(losses, staging / "img" / "losses.png")
    except ValueError as err:
        return _section("losses", "Training losses", f"<p>{_e(str(err))}</p>")
    img = _img("img/losses.png", "Training loss curves", width, height)
    steps = len(losses)
    return _section("losses", "Training losses", f"{img}<p>{steps} logged steps.</p>")


def _audio_sections(items: list[AudioItem], samples_dir: Path, staging: Path) -> Iterable[str]:
    for kind, heading, intro in SECTIONS:
        chosen = [item for item in items if item.kind == kind]
        if not chosen:
            continue
        cards = [_card(item, samples_dir, staging) for item in chosen]
        text = f"<p>{_e(intro)}</p>" if intro else ""
        yield _section(kind, heading, text + '<div class="cards">' + "".join(cards) + "</div>")
    known = {kind for kind, _, _ in SECTIONS}
    others = [item for item in items if item.kind not in known]
    if others:
        cards = [_card(item, samples_dir, staging) for item in others]
        yield _section("other", "Other audio", '<div class="cards">' + "".join(cards) + "</div>")


def _card(item: AudioItem, samples_dir: Path, staging: Path) -> str:
    source = samples_dir / item.path
    audio_rel = f"audio/{item.path}"
    image_rel = f"img/{Path(item.path).with_suffix('.png').as_posix()}"
    (staging / audio_rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, staging / audio_rel)
    audio, sample_rate = read_audio(source)
    width, height = spectrogram_png(audio, sample_rate, staging / image_rel, item.bar_samples)
    seconds = audio.shape[1] / sample_rate
    meta = [f"{seconds:.1f} s"]
    if item.bar_samples:
        bars = audio.shape[1] / item.bar_samples
        meta.append(f"{bars:.3g} bar{'' if bars == 1 else 's'}")
    if item.bpm:
        meta.append(f"{item.bpm:.4g} BPM")
    return (
        '<figure class="card">'
        f'<figcaption><span class="title">{_e(item.title)}</span> '
        f'<span class="meta">{_e(" · ".join(meta))}</span></figcaption>'
        f'<audio controls preload="metadata" src="{_url(audio_rel)}"></audio>'
        + _img(image_rel, f"Spectrogram of {item.title}", width, height)
        + f'<a class="file" href="{_url(audio_rel)}" download>{_e(item.path)}</a>'
        "</figure>"
    )


# --- page -----------------------------------------------------------------------------------
def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
{body}
<script>{TOC_SCRIPT}</script>
</body>
</html>
"""


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1rem 1.5rem 3rem; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #e2e2e2; padding: .25rem .6rem; text-align: left; }
thead th { background: #f0f0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { font-weight: 500; color: #555; }
nav#toc { margin: .8rem 0; }
nav#toc a { margin-right: 1rem; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; }
figure.card { margin: 0; padding: .6rem; background: #fff; border: 1px solid #e2e2e2;
              border-radius: 6px; max-width: 100%; }
figure.card figcaption { margin-bottom: .3rem; }
figure.card .title { font-weight: 600; }
figure.card .meta { color: #666; font-size: .85rem; }
figure.card audio { display: block; width: 100%; min-width: 280px; margin-bottom: .3rem; }
figure.card a.file { display: block; font-size: .8rem; color: #666; }
img { display: block; max-width: 100%; height: auto; }
p.verdict { font-size: 1.1rem; font-weight: 600; padding: .4rem .7rem; border-radius: 4px; }
p.verdict.met { background: #e3f4e6; } p.verdict.missed { background: #fbe9e7; }
table.headline tr.met td:last-child { color: #1b7f3a; font-weight: 600; }
table.headline tr.missed td:last-child { color: #b3261e; font-weight: 600; }
"""

TOC_SCRIPT = """
(function () {
  var nav = document.getElementById("toc");
  document.querySelectorAll("section[id] > h2").forEach(function (h) {
    var a = document.createElement("a");
    a.href = "#" + h.parentElement.id;
    a.textContent = h.textContent;
    nav.appendChild(a);
  });
})();
"""


# --- files -----------------------------------------------------------------------------------
def _limit(items: list[AudioItem], max_per_kind: int) -> list[AudioItem]:
    """At most ``max_per_kind`` items of each kind; per class for per-class bars."""
    counts: dict[str, int] = {}
    kept = []
    for item in items:
        group = item.kind
        if item.kind == "class":
            group = "class:" + item.path.rsplit("/", 1)[0]
        counts[group] = counts.get(group, 0) + 1
        if counts[group] <= max_per_kind:
            kept.append(item)
    return kept


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}
