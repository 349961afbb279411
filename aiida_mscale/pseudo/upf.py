"""Post-processing of the UPF files ld1.x writes, so that pw.x 6.7 can read them. Pure Python.

ld1.x 6.7 writes the PAW ``PP_MULTIPOLES`` array (nbeta x nbeta x (2 lmax + 1) numbers) on one line, about
1250 characters for Li and several thousand for a d element; the XML reader of pw.x 6.7 (and of ld1.x
itself) refuses lines longer than 1024 characters ("xmlr_opentag: severe error, line too long" followed by
"file ... not readable"). :func:`rewrap` splits every over-long line that holds only numbers into lines of
:data:`VALUES_PER_LINE` values; XML tags, attributes and text are never touched, and the numbers are copied
as text, so the data are bit-for-bit the same.
"""

from __future__ import annotations

import re

#: pw.x 6.7's xmltools read lines into a 1024-character buffer; stay well below it.
MAX_LINE_LENGTH = 1000
VALUES_PER_LINE = 4

_NUMBER = r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?'
_NUMERIC_LINE = re.compile(rf'\s*{_NUMBER}(?:\s+{_NUMBER})*\s*')


def long_lines(text: str, limit: int = MAX_LINE_LENGTH) -> list[int]:
    """1-based numbers of the lines of ``text`` longer than ``limit`` characters."""
    return [index for index, line in enumerate(text.splitlines(), start=1) if len(line) > limit]


def rewrap(text: str, limit: int = MAX_LINE_LENGTH, per_line: int = VALUES_PER_LINE) -> str:
    """``text`` with every numeric line longer than ``limit`` split into lines of ``per_line`` values.

    :raises ValueError: if a line longer than ``limit`` is not purely numeric (it cannot be split safely).
    """
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) <= limit:
            out.append(line)
            continue
        if not _NUMERIC_LINE.fullmatch(line):
            raise ValueError(f'line {number} is {len(line)} characters long and not purely numeric: cannot rewrap')
        indent = line[: len(line) - len(line.lstrip())]
        values = line.split()
        out += [indent + '  '.join(values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return '\n'.join(out) + ('\n' if text.endswith('\n') else '')


def header(text: str) -> dict:
    """The attributes of ``PP_HEADER`` (UPF v2) as strings, e.g. ``{'element': 'Li', 'z_valence': '3.0', ...}``.

    :raises ValueError: if the text has no UPF v2 header.
    """
    match = re.search(r'<PP_HEADER\b(.*?)/?>', text, re.S)
    if not match:
        raise ValueError('no <PP_HEADER> element: not a UPF v2 file')
    return {key: value.strip() for key, value in re.findall(r'(\w+)="([^"]*)"', match.group(1))}


def numeric_values(text: str) -> list[str]:
    """Every numeric token outside the tags of ``text`` (to check that rewrapping changed no number)."""
    body = re.sub(r'<[^>]*>', ' ', text)
    return [token for token in body.split() if re.fullmatch(_NUMBER, token)]
