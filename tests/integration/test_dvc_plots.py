"""`dvc plots show` renders without internet: the template (pipeline.dvc_plots, built by
`make setup` from pinned npm tarballs) inlines vega, and Chromium draws every plot from the
page alone. Fetching is tested against a local HTTP server serving tarballs made here."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.dvc_plots import FetchError, Package, fetch_script, write_template
from tests.browser import find_chromium, run_chromium, serve
from tests.conftest import REPO, make_project, run

pytestmark = pytest.mark.integration
TEMPLATE = REPO / ".dvc/plots/offline.html"


def npm_tarball(folder: Path, name: str, version: str, files: dict[str, str]) -> str:
    """Write ``<folder>/<name>/-/<name>-<version>.tgz`` as the npm registry lays it out;
    returns its npm integrity string."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    target = folder / name / "-" / f"{name}-{version}.tgz"
    target.parent.mkdir(parents=True)
    target.write_bytes(buffer.getvalue())
    return "sha512-" + base64.b64encode(hashlib.sha512(buffer.getvalue()).digest()).decode()


def test_libraries_are_fetched_checked_and_inlined(tmp_path):
    registry = tmp_path / "registry"
    good = npm_tarball(registry, "lib", "1.0.0", {"package/build/lib.js": "var a = '</script>';"})
    other = npm_tarball(registry, "other", "2.0.0", {"package/README": "no build"})
    out = tmp_path / "plots" / "offline.html"
    with serve(registry) as url:
        lib = Package("lib", "1.0.0", good, "package/build/lib.js")
        assert fetch_script(lib, url) == "var a = '</script>';"
        write_template(out, url, (lib,))

        tampered = Package("lib", "1.0.0", other, "package/build/lib.js")
        with pytest.raises(FetchError, match=r"lib@1\.0\.0: .* does not match its pinned sha512"):
            write_template(tmp_path / "tampered.html", url, (tampered,))
        with pytest.raises(FetchError, match=r"other@2\.0\.0: no package/build/other\.js"):
            fetch_script(Package("other", "2.0.0", other, "package/build/other.js"), url)
        with pytest.raises(FetchError, match=r"missing@0\.1\.0: cannot download"):
            fetch_script(Package("missing", "0.1.0", good, "x.js"), url)
    page = out.read_text()
    assert "<script>var a = '<\\/script>';</script>" in page  # cannot close its tag early
    assert "{plot_divs}" in page and "{scripts}" not in page  # no CDN tags from DVC
    assert not (tmp_path / "tampered.html").exists()


@pytest.fixture(scope="module")
def template() -> Path:
    if not TEMPLATE.is_file():
        pytest.fail(f"{TEMPLATE} is missing: `make setup` builds it (python -m pipeline.dvc_plots)")
    return TEMPLATE


def test_dvc_plots_show_draws_every_plot_offline(template, tmp_path):
    project = make_project(tmp_path / "project")
    (project / ".dvc/plots").mkdir()
    shutil.copy2(template, project / ".dvc/plots/offline.html")
    shutil.copy2(REPO / ".dvc/config", project / ".dvc/config")
    models = project / "data/models"
    models.mkdir(parents=True)
    steps = list(range(0, 50, 10))
    pd.DataFrame(
        {"step": steps, "loss_d": [1.0, 0.8, 0.7, 0.65, 0.6], "loss_g": [2, 1, 1, 1, 1]}
    ).to_csv(models / "losses.csv", index=False)
    pd.DataFrame(
        {
            "step": steps,
            "novelty.generated.median_score": [3.0, 2.5, 2.0, 1.8, 1.7],
            "nearest_neighbour.generated.median_db": [20.0, 15, 12, 11, 10],
        }
    ).to_csv(models / "checkpoint_metrics.csv", index=False)

    shown = run(["dvc", "plots", "show"], project)
    page_path = project / "dvc_plots/index.html"
    assert page_path.as_uri() in shown.stdout
    page = page_path.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page), "a script still loads from elsewhere"
    plots = re.findall(r'<div id\s*=\s*"([^"]+)"', page)
    assert len(plots) == 2  # one per top-level plot in dvc.yaml, each file drawn once

    with serve(page_path.parent) as url:  # a page of its own: nothing else is served
        dom = run_chromium(
            find_chromium(),
            tmp_path / "profile",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url + "index.html",
        )
    drawn = re.findall(r'<div id="([^"]+)"[^>]*class="[^"]*vega-embed[^"]*"', dom)
    assert sorted(drawn) == sorted(plots), dom[:2000]
    assert dom.count("<canvas") + dom.count("<svg") >= len(plots)
