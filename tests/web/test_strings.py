"""Text in one place for translation: every string the phone shows is in web_client/i18n/en.js,
and every key the page asks for exists there (a static check: no browser needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.deliver.service_process import REPO

CLIENT = REPO / "web_client"
STRINGS = CLIENT / "i18n" / "en.js"
SCRIPTS = [CLIENT / "app.js", *sorted((CLIENT / "js").glob("*.js"))]


def _keys() -> set[str]:
    return set(re.findall(r'^\s*"([\w.-]+)":', STRINGS.read_text(), flags=re.MULTILINE))


class _Page(HTMLParser):
    """Collects the page's visible text and its data-i18n* keys."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.keys: set[str] = set()
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        for name, value in attrs:
            if name.startswith("data-i18n") and value:
                self.keys.add(value)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and self._in[-1:] != ["title"]:
            self.text.append(data.strip())


def test_the_page_holds_no_text_of_its_own() -> None:
    page = _Page()
    page.feed((CLIENT / "index.html").read_text())
    assert page.text == []
    assert len(page.keys) > 50 and page.keys <= _keys(), page.keys - _keys()


def test_every_key_the_scripts_ask_for_exists() -> None:
    keys = _keys()
    asked = set()
    for script in SCRIPTS:
        asked |= set(re.findall(r'\bt\("([\w.-]+)"', script.read_text()))
    assert len(asked) > 50
    assert asked <= keys, asked - keys


def test_no_sentence_is_written_in_a_script() -> None:
    """A literal of three or more words is text for a person: it belongs in en.js."""
    sentence = re.compile(r"""(["'`])([A-Za-z][a-z]+(?: [a-z]+){2,}[^"'`]*)\1""")
    found = {
        f"{script.name}: {m.group(2)}"
        for script in SCRIPTS
        for line in script.read_text().splitlines()
        if not line.lstrip().startswith("//")
        for m in sentence.finditer(line)
    }
    assert found == set()
