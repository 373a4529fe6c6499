"""A minimal headless-browser driver: Debian's chromium with ``--dump-dom``/``--screenshot``.

``--virtual-time-budget`` lets the page's scripts (and their fetches) run before the DOM is
dumped, so no DevTools protocol client is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

SKIP_REASON = (
    "no chromium: install Debian's package (apt-get install chromium) to run the browser test"
)
INSTALL_TIMEOUT = 240.0


def find_chromium(install: bool = True) -> str | None:
    """The chromium binary; as root, try a quick ``apt-get install -y chromium`` once."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        try:
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                capture_output=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        return find_chromium(install=False)
    return None


def _run(chromium: str, *args: str, timeout: float = 90.0) -> str:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1440,1100",
        "--virtual-time-budget=8000",
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, timeout=timeout, check=True)
    return out.stdout.decode(errors="replace")


def dump_dom(chromium: str, url: str, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran; also a PNG screenshot when asked."""
    if screenshot is not None:
        _run(chromium, f"--screenshot={screenshot}", url)
    return _run(chromium, "--dump-dom", url)


class _Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._card: str | None = None
        self._in_value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and "card" in (a.get("class") or "").split():
            self._card = a.get("data-rate") or a.get("data-total")
        elif tag == "p" and a.get("class") == "value" and self._card:
            self._in_value = True

    def handle_data(self, data: str) -> None:
        if self._in_value and self._card:
            self.values[self._card] = self.values.get(self._card, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_value = False


def card_values(dom: str) -> dict[str, str]:
    """``{rate or total name: the text the card shows}``."""
    parser = _Cards()
    parser.feed(dom)
    return {k: v.strip() for k, v in parser.values.items()}


def expected_text(rate: str, value: float | None) -> str:
    """What ``dashboard.js`` shows for a rate (its ``fmtRate``)."""
    if value is None:
        return "\u2013"  # en dash, as the page shows
    if rate == "csat_average":
        return f"{value:.2f}"
    return f"{value * 100:.1f}%"
