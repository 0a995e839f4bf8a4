"""The cells of a table as edgecomp prints it (rich's heavy-head box), by column name, for
tests that read a printed table the way a person does: by its headers."""

from __future__ import annotations


def table_rows(out: str, *, first: str = "model") -> list[dict[str, str]]:
    """Each row of the first printed table whose header starts with `first`: its cells by
    header (a header written over two lines reads as one, "same call"), a row whose long
    names wrap onto more lines joined back into one (a cell's pieces joined by a space, as
    rich wraps names at spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("┃") and any(cell.strip() == first for cell in
                                                 line.split("┃")[1:-1])
                 or line.startswith("┏"))
    while not lines[start].startswith("┃"):
        start += 1
    headers: list[str] = []
    index = start
    while lines[index].startswith("┃"):
        cells = [cell.strip() for cell in lines[index].split("┃")[1:-1]]
        headers = [" ".join(filter(None, (old, new))) for old, new in
                   zip(headers or [""] * len(cells), cells)]
        index += 1
    rows: list[dict[str, str]] = []
    for line in lines[index + 1:]:
        if not line.startswith("│"):
            break
        cells = dict(zip(headers, (cell.strip() for cell in line.split("│")[1:-1])))
        if rows and not cells.get("format"):  # the rest of the row above, folded
            for name, piece in cells.items():
                rows[-1][name] = " ".join(filter(None, (rows[-1][name], piece)))
            continue
        rows.append(cells)
    return rows
