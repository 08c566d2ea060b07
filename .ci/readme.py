"""Checks that a README renders on crates.io: its code fences close, its tables keep their
columns, and it links nothing relative (crates.io cannot resolve a path of the repository).

Usage: python3 .ci/readme.py README.md
"""

import re
import sys


def check(text: str) -> list[str]:
    problems = []
    fence = None
    table_columns = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        opener = re.match(r"^(`{3,}|~{3,})", stripped)
        if fence is None and opener:
            fence = (opener.group(1), number)
            continue
        if fence is not None:
            if stripped.startswith(fence[0]) and stripped.strip(fence[0][0]) == "":
                fence = None
            continue
        if stripped.startswith("|") and stripped.endswith("|"):
            # Cells, not counting escaped pipes or pipes inside code spans.
            cells = re.sub(r"`[^`]*`", "``", stripped.replace("\\|", ""))
            columns = cells.count("|") - 1
            if table_columns is None:
                table_columns = columns
            elif columns != table_columns:
                problems.append(
                    f"line {number}: a table row with {columns} columns in a table of {table_columns}"
                )
        else:
            table_columns = None
        for target in re.findall(r"\]\(([^)\s]+)", line):
            if not re.match(r"^(https?://|mailto:|#)", target):
                problems.append(f"line {number}: a relative link, {target}")
    if fence is not None:
        problems.append(f"line {fence[1]}: a code fence that never closes")
    return problems


def main() -> int:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as file:
        problems = check(file.read())
    for problem in problems:
        print(f"{path}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
