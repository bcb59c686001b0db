"""Render the PWA's PNG icons from ``web_client/icons/icon.svg`` with headless Chromium.

The PNGs are committed (phones need raster icons: Android's install banner, iOS's home
screen); this keeps them reproducible from the one SVG source::

    .venv/bin/python -m tests.web.render_icons

``tests/web/test_shell.py`` checks the committed files have the sizes the manifest declares.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.web.browser import launch_chromium

ICONS = Path(__file__).resolve().parents[2] / "web_client" / "icons"
#: file name -> pixel size (manifest: 192 and 512; apple-touch-icon: 180).
SIZES = {"icon-192.png": 192, "icon-512.png": 512, "apple-touch-icon.png": 180}


def render() -> None:
    source = (ICONS / "icon.svg").read_text()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name, size in SIZES.items():
            page = browser.new_page(viewport={"width": size, "height": size})
            sized = source.replace("<svg ", f'<svg width="{size}" height="{size}" ', 1)
            page.set_content(f"<html><body style='margin:0'>{sized}</body></html>")
            page.screenshot(path=str(ICONS / name), omit_background=False)
            page.close()
        browser.close()


if __name__ == "__main__":
    render()
