"""``bargan serve`` in a real Chromium: the page loads from 127.0.0.1 only, generates a bar for
a chosen class at a chosen tempo, plays it looped, walks between two seeds with progress, and
the downloaded file carries the tags; a screenshot is kept. Plus the command's errors and the
warning for a non-loopback address."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.grid import BarGrid, bar_samples_at
from pipeline.models.generator_file import build_generator, save_generator
from pipeline.train import TrainConfig
from tests.browser import DevTools, find_chromium
from tests.conftest import REPO, tool_env
from tests.wav_tags import read_wav_tags

pytestmark = pytest.mark.integration

SR, BPM, BEATS = 8000, 240.0, 4
CLASSES = ["house", "techno"]
# Every media element the page plays, and how often its playback wrapped to the start (loop).
MEDIA_HOOK = """
window.__media = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!window.__media.includes(this)) {
    window.__media.push(this);
    this.__wraps = 0; this.__last = 0;
    this.addEventListener("timeupdate", () => {
      if (this.currentTime < this.__last - 0.2) this.__wraps++;
      this.__last = this.currentTime;
    });
  }
  return play.apply(this, arguments);
};
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = TrainConfig(sample_rate=SR, length=8000, latent_dim=8, model_dim=4, num_classes=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "generator.pt"
    grid = BarGrid(SR, BPM, BEATS, 1)
    return save_generator(
        path, build_generator(config), config, {**grid.timing(), "classes": CLASSES}
    )


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    """``bargan serve`` in its own process group on a free 127.0.0.1 port."""
    port = _free_port()
    temp = tmp_path_factory.mktemp("gradio")
    scratch = tmp_path_factory.mktemp("scratch")  # where the server's own temp folder goes
    env = {
        **tool_env(REPO),
        "GRADIO_TEMP_DIR": str(temp),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TMPDIR": str(scratch),
    }
    log = temp / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", "--checkpoint", str(checkpoint),
             "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"bargan serve did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, log
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Stopped by SIGTERM, the server removes the folder of sound files it made.
    assert not list(scratch.glob("bargan-serve-*")), list(scratch.iterdir())


def _set_number(page: DevTools, element_id: str, value: float) -> None:
    page.evaluate(
        f"(() => {{ const i = document.querySelector('#{element_id} input[type=number]');"
        f" i.value = '{value}'; i.dispatchEvent(new Event('input', {{bubbles: true}}));"
        f" i.dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
    )


def _download(page: DevTools, folder: Path, name: str) -> Path:
    link = f"#bargan-download a[download='{name}']"
    page.wait_for(f'!!document.querySelector("{link}")', what=f"download link for {name}")
    page.evaluate(f'document.querySelector("{link}").click()', gesture=True)
    target = folder / name
    deadline = time.monotonic() + 30
    while not (target.is_file() and not list(folder.glob("*.crdownload"))):
        assert time.monotonic() < deadline, f"{name} was not downloaded: {list(folder.iterdir())}"
        page.pump(0.2)
    return target


def test_page_generates_plays_walks_and_downloads_tagged_files(server, tmp_path):
    url, log = server
    downloads = tmp_path / "downloads"
    page = DevTools(find_chromium(), tmp_path / "profile", downloads)
    try:
        page.send("Page.addScriptToEvaluateOnNewDocument", session=page.page, source=MEDIA_HOOK)
        page.navigate(url)
        page.wait_for("!!document.querySelector('#bargan-generate')", what="the page")
        assert "house, techno" in page.evaluate("document.body.innerText")

        # a bar: class techno, seed 3, at 200 BPM (re-rendered with Rubber Band)
        page.evaluate("document.querySelector('#bargan-class input[value=\"techno\"]').click()")
        _set_number(page, "bargan-seed", 3)
        _set_number(page, "bargan-bpm", 200)
        page.evaluate("document.querySelector('#bargan-generate').click()")
        name = "techno_200bpm_bar_s3.wav"
        page.wait_for(
            f"document.querySelector('#bargan-status').innerText.includes('{name}')", what=name
        )
        # it plays, looped: past its end it starts again, still playing
        page.evaluate(
            "document.querySelector('#bargan-player button[aria-label=\"Play\"]').click()",
            gesture=True,
        )
        bar_seconds = 60 / 200 * BEATS
        playing = page.wait_for(
            "(() => { const m = window.__media.find(m => !m.paused && m.__wraps >= 1);"
            " return m ? {duration: m.duration, wraps: m.__wraps} : null; })()",
            timeout=20, what="the bar playing past its end",
        )  # fmt: skip
        assert playing["duration"] == pytest.approx(bar_seconds, abs=0.01)

        bar = _download(page, downloads, name)
        tags = read_wav_tags(bar)
        frames = bar_samples_at(SR, 200, BEATS)
        assert tags.sample_rate == SR and tags.frames == frames
        assert tags.acid["tempo"] == 200.0 and tags.acid["beats"] == BEATS
        assert not tags.acid["one_shot"]
        assert tags.smpl["loops"][0]["start"] == 0 and tags.smpl["loops"][0]["end"] == frames - 1

        # a walk from seed 3 to seed 8 over 3 bars, at 200 BPM
        _set_number(page, "bargan-seed-b", 8)
        _set_number(page, "bargan-bars", 3)
        page.evaluate("document.querySelector('#bargan-walk').click()")
        walk_name = "techno_200bpm_walk3_s3-to-s8.wav"
        page.wait_for(
            f"document.querySelector('#bargan-status').innerText.includes('{walk_name}')",
            what=walk_name,
        )
        walk = read_wav_tags(_download(page, downloads, walk_name))
        assert walk.frames == 3 * frames and walk.acid["beats"] == 3 * BEATS
        assert walk.smpl["loops"][0]["end"] == 3 * frames - 1

        shot = page.screenshot(tmp_path / "bargan-serve.png")
        print(f"screenshot: {shot}", file=sys.stderr)
        from matplotlib.image import imread

        pixels = imread(shot)[..., :3]
        rgb = np.round(pixels * 255).astype(np.uint32)
        colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
        assert pixels.std() > 0.05 and len(colours) > 100  # text, controls, a waveform

        # nothing but the server itself was asked for anything
        outside = [
            u for u in page.requests
            if not u.startswith((url, "data:", "blob:", "about:"))
        ]  # fmt: skip
        assert not outside, outside
        assert len(page.requests) > 5
    finally:
        page.close()
    assert "Running on local URL:  http://127.0.0.1:" in log.read_text()


def test_serve_errors_and_the_warning_for_other_addresses(checkpoint, tmp_path):
    def serve(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pipeline.cli", "serve", *args]
        return subprocess.run(
            cmd, cwd=REPO, env=tool_env(REPO), capture_output=True, text=True, timeout=120
        )

    missing = tmp_path / "none.pt"
    result = serve("--checkpoint", str(missing))
    assert result.returncode == 2
    assert result.stderr == f"bargan serve: error: checkpoint {missing} not found\n"
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(checkpoint.read_bytes()[:1000])
    result = serve("--checkpoint", str(damaged))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"{damaged} is not a bargan generator file" in result.stderr
    assert (
        "--port 0: a port from 1 to 65535"
        in serve("--checkpoint", str(checkpoint), "--port", "0").stderr
    )
    # 192.0.2.1 (TEST-NET-1) is not this machine's: the warning, then a one-line error
    result = serve(
        "--checkpoint", str(checkpoint), "--host", "192.0.2.1", "--port", str(_free_port())
    )
    assert result.returncode == 2
    assert "bargan serve: warning: listening on 192.0.2.1, not 127.0.0.1" in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("bargan serve: error: --host 192.0.2.1")
    )
    assert "Traceback" not in result.stderr
