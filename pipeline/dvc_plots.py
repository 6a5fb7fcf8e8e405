"""`dvc plots show` without internet: DVC's page loads vega, vega-lite and vega-embed from a CDN,
so offline it renders blank. This writes an HTML template with the three libraries inlined
(the versions DVC's page asks for, their npm tarballs checked against pinned sha512 digests);
``.dvc/config`` names it (``plots.html_template``), and ``make setup`` builds it once.

    python -m pipeline.dvc_plots [--out .dvc/plots/offline.html] [--registry URL]

The registry defaults to ``$NPM_CONFIG_REGISTRY`` or https://registry.npmjs.org.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.fileio import atomic_write

DEFAULT_REGISTRY = "https://registry.npmjs.org"
DEFAULT_OUT = Path(".dvc/plots/offline.html")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # npm's "dist.integrity": sha512-<base64 digest of the tarball>
    script: str  # the browser build inside the tarball

    def tarball_url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.name}-{self.version}.tgz"


# the versions dvc_render's vega page loads (dvc_render/vega.py), in load order
PACKAGES = (
    Package(
        "vega",
        "5.20.2",
        "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
        "package/build/vega.min.js",
    ),
    Package(
        "vega-lite",
        "5.2.0",
        "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
        "package/build/vega-lite.min.js",
    ),
    Package(
        "vega-embed",
        "6.18.2",
        "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
        "package/build/vega-embed.min.js",
    ),
)

# dvc_render's page, less the {scripts} placeholder (the CDN tags), plus the inlined libraries
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    @SCRIPTS@
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


class FetchError(RuntimeError):
    """A library could not be fetched or did not match its pinned digest."""


def fetch_script(package: Package, registry: str, timeout: float = 60) -> str:
    """The browser build of ``package`` from its npm tarball, checked against its digest."""
    url = package.tarball_url(registry)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            tarball = answer.read()
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(
            f"{package.name}@{package.version}: cannot download {url} ({err})"
        ) from err
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise FetchError(
            f"{package.name}@{package.version}: {url} does not match its pinned {algorithm} "
            f"digest (expected {expected[:16]}..., got {actual[:16]}...); nothing written"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.extractfile(package.script)
            if member is None:
                raise KeyError(package.script)
            return member.read().decode("utf-8")
    except (tarfile.TarError, KeyError) as err:
        raise FetchError(f"{package.name}@{package.version}: no {package.script} in {url}") from err


def render_template(scripts: list[str]) -> str:
    """The page with each script inlined ("</script" inside one is escaped so it cannot close
    its tag early)."""
    escaped = (script.replace("</script", "<\\/script") for script in scripts)
    tags = "\n".join(f"<script>{script}</script>" for script in escaped)
    return PAGE.replace("@SCRIPTS@", tags)


def write_template(out: Path, registry: str, packages: tuple[Package, ...] = PACKAGES) -> None:
    scripts = [fetch_script(package, registry) for package in packages]
    atomic_write(out, lambda tmp: Path(tmp).write_text(render_template(scripts), "utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--registry", default=os.environ.get("NPM_CONFIG_REGISTRY") or DEFAULT_REGISTRY
    )
    args = parser.parse_args(argv)
    try:
        write_template(args.out, args.registry)
    except FetchError as err:
        print(f"dvc plots template: {err}", file=sys.stderr)
        return 1
    names = ", ".join(f"{p.name}@{p.version}" for p in PACKAGES)
    print(f"{args.out}: DVC's plots page with {names} inlined")
    return 0


if __name__ == "__main__":
    sys.exit(main())
