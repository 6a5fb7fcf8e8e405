"""Small HTML helpers shared by the report's sections."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def url(path: str) -> str:
    """A relative file path as an attribute value: percent-encoded, so that '#', '?', '%' and
    spaces in file names stay part of the path, then HTML-escaped."""
    return escape(quote(path))


def section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(heading)}</h2>{content}</section>'


def img(src: str, alt: str, width: int, height: int) -> str:
    return f'<img src="{url(src)}" alt="{escape(alt)}" width="{width}" height="{height}">'
