"""Compare every number in two result folders: does a run elsewhere reproduce the committed ``results/``?

Typical use: clone the project on another machine (or run the pipeline again here), let it write its
own ``results/``, then check it against the committed one::

    python -m gramlib.interactive.compare results/ /path/to/other/clone/results/ --rtol 1e-5

Both folders are walked recursively and every file that exists in either is matched by its relative
path. Only ``.json``, ``.csv``, ``.tsv`` and ``.md`` files are read (executed notebooks, images and
everything else are skipped):

* JSON is flattened to paths like ``eval/gram-clean.json:tasks/hear/words/top1_acc`` (list items as
  ``[3]``). Numbers (``bool`` is not a number) compare numerically, strings, booleans and ``null`` by
  equality. A key or list item on one side only is a structure difference.
* CSV/TSV compare cell by cell (``file.csv:row 3/column``; ``row`` counts data rows from 0). Cells that
  parse as a number compare numerically, others as text. A file whose first row is all numbers has no
  header; its columns are named ``col 0``, ``col 1``, ...
* Markdown compares line by line (``file.md:line 7``, 1-based, numbered as in A). The numbers on a
  line compare numerically position by position (``#0``, ``#1``, ...); the rest of the line, with the
  numbers taken out, compares as text. Table rows (after a ``|---|`` header separator) compare cell by
  cell (``file.md:line 7/column#0``). When the line counts differ (a structure difference) the lines
  are aligned first, and lines on one side only are reported (``file.md:B line 9``).

Wall times differ from run to run and machine to machine, so any JSON key, CSV/TSV column or markdown
table column whose name contains one of :data:`TIMING_KEYS` is left out on both sides. ``--ignore``
(fnmatch on the file path or on the flattened path, repeatable) leaves out more, e.g.
``--ignore '*/root'`` for an absolute data path or ``--ignore '*device*'`` for the device name.

A number differs when ``|a - b| > atol + rtol * max(|a|, |b|)``; the defaults (0, 0) ask for the
same value as printed. NaN equals NaN. Exit status: 0 when nothing differs, 1 when a number, a text
or the structure differs, 2 for bad usage (e.g. a folder that does not exist).

Python API: :func:`compare_dirs` returns a :class:`Report`.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import fnmatch
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Names (matched case-insensitively as substrings of a JSON key, a CSV/TSV column header or a
# markdown table column header) of measured times and rates. These change from run to run and from
# machine to machine, so a reproduction check leaves them out on both sides. Matched where not glued to
# other letters, so "seconds" also covers "embed_seconds" and "wall" covers "wall_s", "wall_h".
TIMING_KEYS = (
    "seconds",
    "wall",
    "time_s",
    "elapsed",
    "duration_s",
    "timestamp",
    "crops_per_s",
    "steps_per_s",
    "throughput",
    "_s_per",
    "train_s",
    "eval_s",
    "date",
)

# The file types read; every other file (notebooks, images, checkpoints, ...) is skipped.
EXTENSIONS = (".json", ".csv", ".tsv", ".md")

# A number as printed: optional sign, digits with an optional decimal point (or a leading point),
# optional exponent. A sign glued to a word ("lambda-025") is a hyphen, not a minus.
NUMBER_RE = re.compile(r"(?:(?<![\w.])[-+])?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_CELL_NUMBER_RE = re.compile(r"\s*[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?\s*")
_CELL_SPECIAL = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_MD_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")

NUMBER, TEXT, STRUCTURE = "number", "text", "structure"


_TIMING_RE = re.compile("|".join(rf"(?<![a-z]){re.escape(k)}(?![a-z])" for k in TIMING_KEYS))


def is_timing(name: str) -> bool:
    """Whether a key or column name is a measured time or rate (see :data:`TIMING_KEYS`).

    A key matches where it is not glued to other letters: ``embed_seconds`` and ``wall_h`` are timings,
    ``train_steps``, ``time_shift`` and ``validate`` are not.
    """
    return bool(_TIMING_RE.search(str(name).lower()))


@dataclass
class Difference:
    """One difference: ``kind`` is ``number``, ``text`` or ``structure``; ``a``/``b`` as printed."""

    path: str
    kind: str
    a: object = None
    b: object = None
    note: str = ""

    def __str__(self) -> str:
        if self.kind == NUMBER:
            fa, fb = float(self.a), float(self.b)
            diff = abs(fa - fb)
            scale = max(abs(fa), abs(fb))
            rel = diff / scale if scale else math.inf
            return f"{self.path}: {self.a} != {self.b} (abs diff {diff:.3g}, rel diff {rel:.3g})"
        if self.kind == TEXT:
            return f"{self.path}: text differs: {_short(self.a)} != {_short(self.b)}"
        return f"{self.path}: {self.note}"


@dataclass
class Report:
    """What :func:`compare_dirs` found. ``ok`` is true when there are no differences at all."""

    a: str
    b: str
    rtol: float = 0.0
    atol: float = 0.0
    differences: list[Difference] = field(default_factory=list)
    n_numbers: int = 0
    n_files: int = 0

    @property
    def n_number_differences(self) -> int:
        return sum(d.kind == NUMBER for d in self.differences)

    @property
    def n_other_differences(self) -> int:
        return sum(d.kind != NUMBER for d in self.differences)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        return (f"{self.n_numbers} numbers compared in {self.n_files} files; "
                f"{self.n_number_differences} differ beyond rtol={self.rtol:g} atol={self.atol:g}; "
                f"{self.n_other_differences} structure/text differences")

    def lines(self, max_lines: int = 200) -> list[str]:
        """The difference lines (at most ``max_lines``, then how many were left out) and the summary."""
        out = [str(d) for d in self.differences[:max(max_lines, 0)]]
        left = len(self.differences) - len(out)
        if left > 0:
            out.append(f"... {left} more differences not shown (--max-lines {max_lines})")
        out.append(self.summary())
        return out


def _short(value, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_cell(text: str):
    """The float a CSV/markdown cell holds, or None when it is not (only) a number."""
    if _CELL_NUMBER_RE.fullmatch(text) or text.strip().lower() in _CELL_SPECIAL:
        return float(text)
    return None


class _Comparer:
    def __init__(self, report: Report, ignore):
        self.report = report
        self.rtol = float(report.rtol)
        self.atol = float(report.atol)
        self.ignore = tuple(ignore)

    # -- bookkeeping -------------------------------------------------------------------------
    def ignored(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pat) for pat in self.ignore)

    def add(self, path: str, kind: str, a=None, b=None, note: str = "") -> None:
        if not self.ignored(path):
            self.report.differences.append(Difference(path, kind, a, b, note))

    def numbers(self, path: str, fa: float, fb: float, shown_a, shown_b) -> None:
        """Compare two numbers (``shown_*`` is how each is reported)."""
        if self.ignored(path):
            return
        self.report.n_numbers += 1
        if fa == fb or (math.isnan(fa) and math.isnan(fb)):
            return
        if math.isnan(fa) or math.isnan(fb) or math.isinf(fa) or math.isinf(fb):
            self.add(path, NUMBER, shown_a, shown_b)
            return
        if abs(fa - fb) > self.atol + self.rtol * max(abs(fa), abs(fb)):
            self.add(path, NUMBER, shown_a, shown_b)

    # -- JSON ----------------------------------------------------------------------------------
    def json_values(self, rel: str, key_path: str, a, b) -> None:
        """Compare two JSON values found at ``key_path`` (``tasks/hear/words``, ``[3]``) in file ``rel``."""
        path = f"{rel}:{key_path}" if key_path else rel
        if self.ignored(path):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if is_timing(key):
                    continue
                sub = f"{key_path}/{key}" if key_path else str(key)
                if key not in b:
                    self.add(f"{rel}:{sub}", STRUCTURE, note="only in A")
                elif key not in a:
                    self.add(f"{rel}:{sub}", STRUCTURE, note="only in B")
                else:
                    self.json_values(rel, sub, a[key], b[key])
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.add(path, STRUCTURE, note=f"list length {len(a)} != {len(b)}")
            for i, (x, y) in enumerate(zip(a, b)):
                self.json_values(rel, f"{key_path}[{i}]", x, y)
        elif _is_number(a) and _is_number(b):
            self.numbers(path, float(a), float(b), repr(a), repr(b))
        elif isinstance(a, (dict, list)) or isinstance(b, (dict, list)) or _is_number(a) != _is_number(b):
            self.add(path, STRUCTURE, note=f"type differs: {type(a).__name__} {_short(a, 60)} "
                                           f"!= {type(b).__name__} {_short(b, 60)}")
        elif type(a) is not type(b) or a != b:
            self.add(path, TEXT, a, b)

    def json_file(self, rel: str, pa: Path, pb: Path) -> None:
        docs = []
        for side, p in (("A", pa), ("B", pb)):
            try:
                docs.append(json.loads(p.read_text(encoding="utf-8", errors="replace")))
            except ValueError as err:
                self.add(rel, STRUCTURE, note=f"cannot parse {side} as JSON: {err}")
                return
        self.json_values(rel, "", docs[0], docs[1])

    # -- CSV / TSV -----------------------------------------------------------------------------
    @staticmethod
    def _read_table(p: Path, delimiter: str):
        with open(p, newline="", encoding="utf-8", errors="replace") as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
        if rows and rows[0] and all(_parse_cell(c) is not None for c in rows[0]):
            header = None  # headerless: the first row is data
        else:
            header, rows = (rows[0], rows[1:]) if rows else ([], [])
        return header, rows

    def csv_file(self, rel: str, pa: Path, pb: Path) -> None:
        delimiter = "\t" if rel.endswith(".tsv") else ","
        try:
            ha, ra = self._read_table(pa, delimiter)
            hb, rb = self._read_table(pb, delimiter)
        except csv.Error as err:
            self.add(rel, STRUCTURE, note=f"cannot parse as CSV: {err}")
            return
        width = max((len(r) for r in ra + rb), default=0)
        names_a = _column_names(ha, width)
        names_b = _column_names(hb, width)
        if [n for n in names_a if not is_timing(n)] != [n for n in names_b if not is_timing(n)]:
            self.add(f"{rel}:header", STRUCTURE,
                     note=f"columns differ: {_short(ha, 200)} != {_short(hb, 200)}")
        # columns matched by name (first occurrence), in A's order; timing columns left out
        index_b = {}
        for j, name in enumerate(names_b):
            index_b.setdefault(name, j)
        pairs, seen = [], set()
        for j, name in enumerate(names_a):
            if name in seen or is_timing(name) or name not in index_b:
                continue
            seen.add(name)
            pairs.append((name, j, index_b[name]))
        if len(ra) != len(rb):
            self.add(rel, STRUCTURE, note=f"row count {len(ra)} != {len(rb)}")
        for i, (row_a, row_b) in enumerate(zip(ra, rb)):
            for name, ja, jb in pairs:
                ca = row_a[ja] if ja < len(row_a) else None
                cb = row_b[jb] if jb < len(row_b) else None
                path = f"{rel}:row {i}/{name}"
                if ca is None or cb is None:
                    if ca is not cb:
                        self.add(path, STRUCTURE, note=f"cell only in {'A' if cb is None else 'B'}")
                    continue
                self.cells(path, ca, cb)

    def cells(self, path: str, ca: str, cb: str) -> None:
        fa, fb = _parse_cell(ca), _parse_cell(cb)
        if fa is not None and fb is not None:
            self.numbers(path, fa, fb, ca.strip(), cb.strip())
        elif ca != cb:
            self.add(path, TEXT, ca, cb)

    # -- Markdown ------------------------------------------------------------------------------
    def text_numbers(self, path: str, ta: str, tb: str) -> None:
        """Numbers in two strings position by position; the rest as text."""
        if self.ignored(path):
            return
        na, nb = NUMBER_RE.findall(ta), NUMBER_RE.findall(tb)
        if NUMBER_RE.sub("#", ta).strip() != NUMBER_RE.sub("#", tb).strip():
            self.add(path, TEXT, ta.strip(), tb.strip())
        for k, (x, y) in enumerate(zip(na, nb)):
            self.numbers(f"{path}#{k}", float(x), float(y), x, y)

    def md_lines(self, rel: str, la: list[str], lb: list[str], ia: int, ib: int,
                 ctx_a: list, ctx_b: list) -> None:
        """Compare line ``ia`` of A with line ``ib`` of B (0-based) given each line's table header."""
        path = f"{rel}:line {ia + 1}"
        ha, hb = ctx_a[ia], ctx_b[ib]
        if ha is not None and hb is not None:
            cells_a, cells_b = _md_cells(la[ia]), _md_cells(lb[ib])
            keep_a = [c for c, h in zip(cells_a, _pad(ha, len(cells_a))) if not is_timing(h)]
            keep_b = [c for c, h in zip(cells_b, _pad(hb, len(cells_b))) if not is_timing(h)]
            names = [h for h in _pad(ha, len(cells_a)) if not is_timing(h)]
            if len(keep_a) != len(keep_b):
                self.add(path, STRUCTURE, note=f"cell count {len(keep_a)} != {len(keep_b)}")
            for name, ca, cb in zip(names, keep_a, keep_b):
                self.text_numbers(f"{path}/{name}", ca, cb)
        elif ha is None and hb is None:
            self.text_numbers(path, la[ia], lb[ib])
        else:
            self.add(path, TEXT, la[ia].strip(), lb[ib].strip())

    def md_file(self, rel: str, pa: Path, pb: Path) -> None:
        la = pa.read_text(encoding="utf-8", errors="replace").splitlines()
        lb = pb.read_text(encoding="utf-8", errors="replace").splitlines()
        ctx_a, ctx_b = _md_table_context(la), _md_table_context(lb)
        if len(la) == len(lb):
            for i in range(len(la)):
                self.md_lines(rel, la, lb, i, i, ctx_a, ctx_b)
            return
        self.add(rel, STRUCTURE, note=f"line count {len(la)} != {len(lb)}")
        # align the lines with their numbers taken out, so one inserted line does not shift the rest
        skel_a = [NUMBER_RE.sub("#", s) for s in la]
        skel_b = [NUMBER_RE.sub("#", s) for s in lb]
        matcher = difflib.SequenceMatcher(None, skel_a, skel_b, autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            for k in range(min(a1 - a0, b1 - b0)):  # equal or replace blocks, pairwise
                self.md_lines(rel, la, lb, a0 + k, b0 + k, ctx_a, ctx_b)
            n = min(a1 - a0, b1 - b0)  # lines compared above; the rest are on one side only
            for i in range(a0 + n, a1):
                self.add(f"{rel}:line {i + 1}", STRUCTURE, note=f"only in A: {_short(la[i].strip(), 80)}")
            for j in range(b0 + n, b1):
                self.add(f"{rel}:B line {j + 1}", STRUCTURE, note=f"only in B: {_short(lb[j].strip(), 80)}")


def _column_names(header, width: int) -> list[str]:
    if header is None:
        return [f"col {j}" for j in range(width)]
    names = [h if h.strip() else f"col {j}" for j, h in enumerate(header)]
    return names + [f"col {j}" for j in range(len(names), width)]


def _pad(header: list[str], n: int) -> list[str]:
    return list(header[:n]) + [f"col {j}" for j in range(len(header), n)]


def _md_cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return s.split("|")


def _md_table_context(lines: list[str]) -> list:
    """For each line, the header cells of the markdown table it belongs to (None outside tables).

    A table starts at a ``|`` row followed by a ``|---|`` separator and runs while lines start with
    ``|``. The header and separator rows belong to the table too (so a timing column's name is left
    out like its cells).
    """
    ctx = [None] * len(lines)
    i = 0
    while i < len(lines):
        if (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
                and _MD_SEPARATOR_RE.match(lines[i + 1])):
            header = [c.strip() or f"col {j}" for j, c in enumerate(_md_cells(lines[i]))]
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                ctx[j] = header
                j += 1
            i = j
        else:
            i += 1
    return ctx


def _files(root: Path) -> set[str]:
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.lower().endswith(EXTENSIONS):
                out.add((Path(dirpath) / name).relative_to(root).as_posix())
    return out


def compare_dirs(a, b, rtol: float = 0.0, atol: float = 0.0, ignore=()) -> Report:
    """Compare every number in the ``.json``/``.csv``/``.tsv``/``.md`` files under folders ``a`` and ``b``.

    ``ignore``: fnmatch patterns on the file path (relative to the folder, ``/``-separated) or on the
    flattened path of a value (``eval/x.json:tasks/hear/words/seconds``). Raises
    :class:`FileNotFoundError` when ``a`` or ``b`` is not a folder.
    """
    pa, pb = Path(a), Path(b)
    for p in (pa, pb):
        if not p.is_dir():
            raise FileNotFoundError(
                f"{p}: not a folder (give two result folders, e.g. results/ of two checkouts)")
    if rtol < 0 or atol < 0:
        raise ValueError("rtol and atol must be >= 0")
    report = Report(str(a), str(b), rtol=float(rtol), atol=float(atol))
    cmp = _Comparer(report, ignore)
    fa, fb = _files(pa), _files(pb)
    for rel in sorted(fa | fb):
        if cmp.ignored(rel):
            continue
        if rel not in fb:
            cmp.add(rel, STRUCTURE, note="file only in A")
            continue
        if rel not in fa:
            cmp.add(rel, STRUCTURE, note="file only in B")
            continue
        report.n_files += 1
        ext = rel.lower().rsplit(".", 1)[-1]
        if ext == "json":
            cmp.json_file(rel, pa / rel, pb / rel)
        elif ext in ("csv", "tsv"):
            cmp.csv_file(rel, pa / rel, pb / rel)
        else:
            cmp.md_file(rel, pa / rel, pb / rel)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gramlib.interactive.compare",
        description="Compare every number in two result folders (e.g. results/ of two checkouts); "
                    "exit 1 if any differs beyond the tolerance.")
    parser.add_argument("a", help="first folder (e.g. the committed results/)")
    parser.add_argument("b", help="second folder with the same layout (e.g. another clone's results/)")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    parser.add_argument("--max-lines", type=int, default=200,
                        help="print at most this many differences (default 200)")
    parser.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                        help="fnmatch pattern on the file path or the flattened value path to leave out "
                             "(repeatable), e.g. '*/root' or 'seld/*/predictions/*'")
    args = parser.parse_args(argv)
    for name in ("a", "b"):
        p = Path(getattr(args, name))
        if not p.is_dir():
            what = "does not exist" if not p.exists() else "is not a folder"
            print(f"compare: error: {p} {what}; give two folders with the same layout "
                  f"(e.g. results/ of two checkouts)", file=sys.stderr)
            return 2
    if args.rtol < 0 or args.atol < 0 or math.isnan(args.rtol) or math.isnan(args.atol):
        print("compare: error: --rtol and --atol must be numbers >= 0", file=sys.stderr)
        return 2
    report = compare_dirs(args.a, args.b, rtol=args.rtol, atol=args.atol, ignore=args.ignore)
    for line in report.lines(args.max_lines):
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
