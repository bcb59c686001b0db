"""The sandbox EHR's HTML pages: one frame with a phone viewport and a small stylesheet.

A new user opens the sandbox on the phone they test capture with, so its pages are laid out
for a phone (``width=device-width``) and fit 390 CSS px without sideways scrolling: table rows
stack, long words wrap, and links are at least 44 px tall to tap (tests/web/test_sandbox_ehr).
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; padding: 8px 16px; max-width: 48rem; }
h1 { font-size: 1.4rem; line-height: 1.3; }
p, td, li { overflow-wrap: anywhere; }
a { display: inline-block; min-height: 44px; min-width: 44px; padding: 10px 2px; }
table { border-collapse: collapse; width: 100%; }
td { padding: 4px 8px; border-bottom: 1px solid #c3ccd8; vertical-align: middle; }
@media (max-width: 600px) {
  tr { display: block; padding: 8px 0; border-bottom: 1px solid #c3ccd8; }
  td { display: block; padding: 0; border: none; }
}
"""


def page(title: str, body: str) -> HTMLResponse:
    """A whole HTML page; ``body`` is markup whose values the caller has escaped."""
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
