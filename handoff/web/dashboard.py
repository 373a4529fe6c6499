"""The ops dashboard: one HTML page plus its script and stylesheet, all from the package.

No CDN, no build step: ``static/`` holds vanilla JS that fetches ``/metrics/summary``
every few seconds and draws inline SVG charts.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

_TYPES = {
    "dashboard.js": "application/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


@cache
def _read(name: str) -> bytes:
    return resources.files("handoff.web").joinpath("static", name).read_bytes()


def page() -> str:
    return _read("dashboard.html").decode()


def asset(name: str) -> tuple[bytes, str] | None:
    """``(body, content type)`` of a whitelisted static asset, else ``None``."""
    if name not in _TYPES:
        return None
    return _read(name), _TYPES[name]


__all__ = ["asset", "page"]
