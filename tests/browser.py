"""Headless Chromium (Debian's /usr/bin/chromium, driven by playwright) opening a local page
with the network cut: what the page asked for, logged as errors, threw or popped up."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")

# Every plotly chart drawn: its id, whether plotly's SVG is there, the traces plotly knows and
# how many trace elements (lines, boxes, bars, markers) have a shape to draw.
CHARTS_JS = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => ({
    id: div.id,
    svg: div.querySelector('svg.main-svg') !== null,
    types: (div._fullData || []).map(trace => trace.type),
    drawn: Array.from(div.querySelectorAll('.cartesianlayer .trace path'))
        .filter(path => (path.getAttribute('d') || '').length > 2).length,
}))"""


@dataclass
class Visit:
    """A page loaded offline, with what went wrong while it loaded and ran."""

    page: Any
    blocked: list[str] = field(default_factory=list)  # requests for anything not local
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages

    def charts(self) -> list[dict[str, Any]]:
        return self.page.evaluate(CHARTS_JS)


@contextmanager
def offline_page(path: Path, *, width: int = 1280, height: int = 900) -> Iterator[Visit]:
    """Open `path` in headless Chromium, aborting every request that is not local, and wait
    until every plotly chart on it has been drawn."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            visit = Visit(page)

            def route(request_route) -> None:
                url = request_route.request.url
                if url.startswith(LOCAL_SCHEMES):
                    request_route.continue_()
                else:
                    visit.blocked.append(url)
                    request_route.abort()

            def dialog(popup) -> None:
                visit.dialogs.append(popup.message)
                popup.dismiss()

            page.route("**/*", route)
            page.on("console", lambda message: message.type == "error"
                    and visit.console_errors.append(message.text))
            page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
            page.on("dialog", dialog)
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".every(div => div.querySelector('svg.main-svg') !== null)", timeout=30_000)
            yield visit
        finally:
            browser.close()


def distinct_colours(png: bytes) -> tuple[int, int]:
    """How many colours a PNG screenshot holds, and how many of its pixels are clearly
    coloured (not white, grey or black: the traces, never the axes and text)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    colours = len(np.unique(pixels, axis=0))
    chromatic = int(((pixels.max(axis=1) - pixels.min(axis=1)) > 60).sum())
    return colours, chromatic
