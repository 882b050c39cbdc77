"""Reports as self-contained HTML pages: the report's Markdown (headings, pipe tables,
paragraphs) turned into HTML with no scripts and every value escaped."""

from __future__ import annotations

import html


def markdown_page(markdown: str, title: str, *, max_width_em: int) -> str:
    """One HTML page of ``markdown`` (``#``/``##``/``###`` headings, ``| a | b |`` tables
    whose ``|---|`` rules are dropped, any other line a paragraph)."""
    out: list[str] = []
    in_table = False
    for line in markdown.splitlines():
        is_row = line.startswith("| ")
        if line.startswith("|-"):
            continue
        if is_row and not in_table:
            out.append("<table>")
            in_table = True
        elif not is_row and in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif is_row:
            cells = [html.escape(c.strip().replace("\\|", "|"))
                     for c in line.strip().strip("|").split(" | ")]
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    style = (f"body{{font-family:sans-serif;max-width:{max_width_em}em;margin:2em auto}}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:.2em .5em}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head>"
            "<body>\n" + "\n".join(out) + "\n</body></html>\n")
