"""MkDocs hook: a list may start right after a paragraph line, as on GitHub.

The protocol and the SDK READMEs are written for GitHub's CommonMark, where a list needs no blank
line before it; Python-Markdown folds such a list into the paragraph above. This hook inserts the
blank line, outside fenced code, and indents items nested by two spaces (CommonMark) by four
(Python-Markdown), so that the included pages render as they do on GitHub.
"""

from __future__ import annotations

import re
from typing import Any

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S")


def on_page_markdown(markdown: str, **_: Any) -> str:
    lines = markdown.split("\n")
    out: list[str] = []
    fence: str | None = None
    in_list = False
    for line in lines:
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1).startswith(fence):
                fence = None
        elif opening:
            fence = opening.group(1)[:3]
        elif _ITEM.match(line):
            indent = len(line) - len(line.lstrip(" "))
            if in_list and indent in (2, 3):
                line = (
                    " " * (4 - indent) + line
                )  # a nested item: Python-Markdown wants 4 spaces
            previous = out[-1] if out else ""
            if (
                not in_list
                and previous.strip()
                and not previous.lstrip().startswith("|")
            ):
                out.append("")
            in_list = True
        elif not line.strip():
            pass
        elif not line.startswith((" ", "\t")) and (not out or not out[-1].strip()):
            in_list = False  # a paragraph after a blank line ends the list
        out.append(line)
    return "\n".join(out)
