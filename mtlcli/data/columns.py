"""Finding a format's columns among the names a file has (CSV/TSV headers, JSONL keys, dataset columns)."""

from __future__ import annotations

Columns = dict[str, tuple[str, ...]]  # canonical column name -> accepted names in the file, preferred first


def match_columns(found: list[str], columns: Columns) -> dict[str, str]:
    """Map each canonical column to the first accepted name present in `found`."""
    matched = {}
    for canonical, names in columns.items():
        name = next((name for name in names if name in found), None)
        if name is not None:
            matched[canonical] = name
    return matched


def missing_columns(
    matched: dict[str, str], columns: Columns, required: tuple[str, ...], found: list[str], noun: str
) -> str:
    """A message naming the missing required columns and the ones found, or "" when none is missing."""
    missing = [
        f"{canonical} (one of: {', '.join(columns[canonical])})" for canonical in required if canonical not in matched
    ]
    if not missing:
        return ""
    return f"missing {noun} {'; '.join(missing)}; found {noun}s: {', '.join(found) or 'none'}"
