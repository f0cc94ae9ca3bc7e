"""Reads record's CI formats with the reference parsers CI systems and
forges use, and prints what they saw as JSON (tests/baseline.rs).

  ci_formats.py markdown FILE   -> {"tables": [[[cell, ...], ...], ...], "html": "..."}
  ci_formats.py junit FILE XSD  -> {"valid": true, "cases": [...]}
"""

import json
import sys


def markdown(path):
    from markdown_it import MarkdownIt

    # CommonMark with GitHub's tables, as a pull-request comment renders.
    md = MarkdownIt("commonmark").enable("table")
    text = open(path, encoding="utf-8").read()
    tables, rows, row, in_cell, cell = [], None, None, False, ""
    for token in md.parse(text):
        if token.type == "table_open":
            rows = []
        elif token.type == "table_close":
            tables.append(rows)
            rows = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type in ("th_open", "td_open"):
            in_cell, cell = True, ""
        elif token.type in ("th_close", "td_close"):
            row.append(cell)
            in_cell = False
        elif token.type == "inline" and in_cell:
            cell += "".join(child.content for child in token.children or [])
    return {"tables": tables, "html": md.render(text)}


def junit(path, xsd):
    import xmlschema
    from junitparser import Failure, JUnitXml

    xmlschema.XMLSchema(xsd).validate(path)
    cases = []
    for suite in JUnitXml.fromfile(path):
        for case in suite:
            failures = [
                {"message": r.message, "text": r.text}
                for r in case.result
                if isinstance(r, Failure)
            ]
            cases.append({"suite": suite.name, "name": case.name, "failures": failures})
    return {"valid": True, "cases": cases}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "markdown":
        print(json.dumps(markdown(sys.argv[2])))
    elif mode == "junit":
        print(json.dumps(junit(sys.argv[2], sys.argv[3])))
    else:
        sys.exit(f"unknown mode {mode}")
