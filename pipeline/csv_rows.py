"""Small CSV tables people write by hand beside a corpus (``overrides.csv``, ``splits.csv``),
read row by row with the line each row starts on in the file, so that an error names the line
an editor shows. (pandas skips blank lines and does not say where a row came from.)"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


class CsvRowsError(ValueError):
    """The file is not a readable CSV table; the message names the file (and line)."""


@dataclass(frozen=True)
class CsvTable:
    columns: list[str]  # the header, as written ([] for a file with no header)
    rows: list[tuple[int, dict[str, str]]]  # (line in the file, {column: cell}), in file order


def read_csv_rows(path: Path) -> CsvTable:
    """``path`` as a header and its rows, every cell a string. Blank lines, rows of empty
    cells and comment lines (the first cell starts with ``#``) are skipped; a short row is
    padded with empty cells; a row longer than the header is a :class:`CsvRowsError`."""
    columns: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            end = 0  # the last line of the previous record
            for cells in reader:
                line, end = end + 1, reader.line_num
                if _skipped(cells):
                    continue
                if not columns:
                    columns = cells
                    continue
                if len(cells) > len(columns):
                    raise CsvRowsError(
                        f"{path}: line {line}: {len(cells)} cells where the header "
                        f"({','.join(columns)}) has {len(columns)}"
                    )
                cells += [""] * (len(columns) - len(cells))
                rows.append((line, dict(zip(columns, cells, strict=True))))
    except UnicodeDecodeError as err:
        raise CsvRowsError(f"{path}: not UTF-8 text ({err})") from None
    except csv.Error as err:
        raise CsvRowsError(f"{path}: line {end + 1}: not a readable CSV row ({err})") from None
    return CsvTable(columns, rows)


def _skipped(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#")
