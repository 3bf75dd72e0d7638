"""Escaping for the text formats: Markdown (GitHub-flavoured) and rich console text.

Every string that came from a config, a catalogue or a probe goes through one of these
before it is laid out, so a purpose like ``<script>`` or a reason with a pipe and a
newline renders as text and never as markup.
"""

from __future__ import annotations

import html
import io
import re

from rich.console import Console
from rich.text import Text

from reports._common import Options, one_line, printable

# Characters GitHub-flavoured Markdown gives a meaning inline; `|` splits table cells.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!#])")


def md_text(text: str) -> str:
    """`text` as one line of literal Markdown text (safe in a paragraph or a table cell)."""
    escaped = html.escape(one_line(text), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def md_code(text: str, *, in_table: bool = True) -> str:
    """`text` as an inline code span, fenced with more backticks than it contains.

    In a table cell a pipe must be escaped even inside code; elsewhere the backslash would
    show, so pass `in_table=False` there.
    """
    flat = one_line(text)
    if in_table:
        flat = flat.replace("|", "\\|")
    if not flat:
        return ""
    longest = max((len(run) for run in re.findall("`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def plain(text: str) -> Text:
    """A rich `Text` that shows `text` literally: no markup, no terminal escapes."""
    return Text(printable(text))


def console(options: Options) -> tuple[Console, io.StringIO]:
    """A console that writes into a string, coloured only when asked."""
    buffer = io.StringIO()
    out = Console(
        file=buffer,
        width=options.width,
        color_system="standard" if options.color else None,
        force_terminal=options.color,
        no_color=not options.color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
    )
    return out, buffer


def rendered(buffer: io.StringIO) -> str:
    """The console's text with trailing spaces removed from each line."""
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
