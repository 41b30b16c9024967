"""Spreadsheet plumbing every import and export shares: CSV read in UTF-8 or Big5 and written
with a BOM (`SmartCSV`), an all-text XLSX writer (`TextXLSX`), a dataset of text held by
column (`TextColumns`), formula escaping for cells a spreadsheet would run (`escape_formula`,
`escape_formula_column`), where an import file waits between preview
and confirm (`ImportUploadStorage`), and dates read as people write them (`read_date`,
`read_datetime`: ISO, YYYY/M/D, and D/M/YYYY or M/D/YYYY only when the company says which).
Nothing here knows a model.
"""

from __future__ import annotations

import csv
import datetime
import io
import pickle
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from xml.sax.saxutils import escape as xml_escape

import tablib
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export.formats import base_formats
from import_export.tmp_storages import CacheStorage
from openpyxl.utils import get_column_letter
from tablib.core import Row

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str | None) -> str:
    """A text cell: "" for NULL (a department or host through an outer join), and a leading
    apostrophe on text a spreadsheet would run as a formula, which every spreadsheet shows
    as text (OWASP's advice against CSV injection)."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


_FORMULA_STARTS = frozenset(FORMULA_PREFIXES)
_FIRST_CHARACTER = itemgetter(slice(0, 1))


def escape_formula_column(values: Sequence[str | None]) -> Sequence[str]:
    """`escape_formula` over a whole column. Almost no column of a real export holds a cell
    starting like a formula, and one pass in C over the cells' first characters finds out;
    only a column with such a cell is escaped cell by cell. For 100,000 subjects, calling
    `escape_formula` on every cell cost as much CPU as the rest of the CSV export."""
    try:
        plain = _FORMULA_STARTS.isdisjoint(map(_FIRST_CHARACTER, values))
    except TypeError:  # a NULL, which has no first character: a department or host through an outer join
        values = ["" if value is None else value for value in values]
        plain = _FORMULA_STARTS.isdisjoint(map(_FIRST_CHARACTER, values))
    return values if plain else [escape_formula(value) for value in values]


class TextColumns(tablib.Dataset):
    """A dataset of cells already written as text, held column by column and read row by
    row. tablib keeps each row as an object of its own (for 100,000 rows, as much CPU as the
    rest of the CSV export); `SmartCSV` and `TextXLSX` only iterate the rows, which are
    zipped from the columns as they are written and dropped at once. Anything else that
    reads the dataset (JSON, tablib's formats) gets tablib's rows, built on first use."""

    def __init__(self, columns: Sequence[Sequence[str]], headers: Sequence[str]):
        super().__init__(headers=headers)
        self._columns: Sequence[Sequence[str]] | None = columns

    def _get_data(self) -> list[Row]:
        if self._columns is not None:
            self._rows, self._columns = [Row(row) for row in zip(*self._columns, strict=True)], None
        return self._rows

    def _set_data(self, rows: list[Row]) -> None:
        self._rows, self._columns = rows, None

    _data = property(_get_data, _set_data)

    def __iter__(self) -> Iterator[Sequence[str]]:
        if self._columns is not None:
            return zip(*self._columns, strict=True)
        return (row.tuple for row in self._rows)

    @property
    def height(self) -> int:
        if self._columns is not None:
            return len(self._columns[0]) if self._columns else 0
        return len(self._rows)

    @property
    def width(self) -> int:
        if self._columns is not None:
            return len(self._columns)
        return super().width


class SmartCSV(base_formats.CSV):
    """CSV in UTF-8 (with or without BOM) or Big5/CP950, which Excel writes on Traditional
    Chinese Windows. Read as bytes and decoded here, trying UTF-8 first: a CP950 file is
    almost never valid UTF-8, so the order decides correctly."""

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            in_stream = decode_csv(in_stream)
        return tablib.import_set(in_stream, format="csv", **kwargs)

    def export_data(self, dataset, **kwargs):
        # A BOM so Excel opens UTF-8 (Chinese names) correctly. Written with the csv module
        # directly: tablib's export formats every cell again, a third of the export's time.
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(dataset.headers)
        writer.writerows(dataset)
        return out.getvalue()


class TextXLSX(base_formats.XLSX):
    """XLSX whose cells are all text, written straight as SpreadsheetML.

    For 100,000 subjects on the 2-core benchmark machine, tablib's writer (an openpyxl
    workbook) took 26 s, openpyxl's write-only mode 17 s (14 s with lxml), XlsxWriter 10 s;
    this takes about 2 s. Every cell is an inline string, so no cell of the file can be a
    formula, whatever the apostrophe escaping does. Reading (import) stays with openpyxl,
    which parses through defusedxml.
    """

    def export_data(self, dataset, **kwargs) -> bytes:
        return xlsx_of_text(dataset)


def decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp950"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(_("The file is neither UTF-8 nor Big5 text."))


# --- XLSX of text ------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        f'<Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_DOC_RELS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
    # Two cell formats: 0 plain, 1 bold (the header row).
    "xl/styles.xml": (
        f'<styleSheet xmlns="{_MAIN}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}
# Characters XML 1.0 cannot hold at all (a pasted vertical tab, say): shown as U+FFFD.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xlsx_of_text(dataset: tablib.Dataset) -> bytes:
    """A one-sheet workbook: the headers in bold on a frozen first row, then the rows, every
    non-empty cell as text."""
    headers = dataset.headers or []
    letters = [get_column_letter(i) for i in range(1, max(len(headers), dataset.width) + 1)]

    def row_xml(number: int, values, style: str = "") -> str:
        cells = "".join(
            f'<c r="{letter}{number}"{style} t="inlineStr"><is><t xml:space="preserve">'
            f"{xml_escape(str(value))}</t></is></c>"
            for letter, value in zip(letters, values, strict=False)
            if value is not None and value != ""
        )
        return f'<row r="{number}">{cells}</row>'

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, xml in _XLSX_PARTS.items():
            book.writestr(name, _XML + xml)
        with book.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                f'{_XML}<worksheet xmlns="{_MAIN}"><sheetViews><sheetView workbookViewId="0">'
                '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                "</sheetView></sheetViews><sheetData>".encode()
            )
            chunk = [row_xml(1, headers, ' s="1"')]
            for number, values in enumerate(dataset, 2):
                chunk.append(row_xml(number, values))
                if len(chunk) == 5000:
                    sheet.write(_NOT_XML.sub("\ufffd", "".join(chunk)).encode())
                    chunk = []
            sheet.write((_NOT_XML.sub("\ufffd", "".join(chunk)) + "</sheetData></worksheet>").encode())
    return out.getvalue()


class ImportUploadStorage(CacheStorage):
    """Where an uploaded import file waits between the preview and the confirm step: the
    cache (Redis in production, shared by every web process), gone after an hour even
    when nobody confirms."""

    CACHE_LIFETIME = 60 * 60
    CACHE_PREFIX = "kangaroo-import-"


# --- dates as people and spreadsheets write them -----------------------------------------------

# Year first: ISO (2026-04-03) and how Excel on Traditional Chinese Windows writes (2026/4/3).
_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
# Year last (03/04/2026): day first or month first, which only the company's setting can tell.
_YEAR_LAST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
_TIME = re.compile(r"(?:(上午|下午|AM|PM)\s*)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:\s*(AM|PM|上午|下午))?", re.I)
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.I)
DAY_FIRST, MONTH_FIRST = "dmy", "mdy"


def date_format_hint() -> str:
    return _("use YYYY-MM-DD or YYYY/M/D, e.g. 2026-04-03")


def datetime_format_hint() -> str:
    return _("use YYYY-MM-DD HH:MM or YYYY/M/D HH:MM, e.g. 2026-04-03 09:00, in the company's time zone")


def _date_of(text: str, order: str, hint: str) -> datetime.date:
    """`text` (a date only) as a date; ValueError with a message saying what to write."""
    if match := _YEAR_FIRST.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _YEAR_LAST.fullmatch(text):
        first, second, year = (int(part) for part in match.groups())
        if order == DAY_FIRST:
            day, month = first, second
        elif order == MONTH_FIRST:
            month, day = first, second
        elif first > 12 >= second or first == second:
            day, month = first, second
        elif second > 12 >= first:
            month, day = first, second
        else:
            raise ValueError(
                _(
                    "“%(value)s” could be read day first or month first: %(hint)s, or set the "
                    "company's date order for imports."
                )
                % {"value": text, "hint": hint}
            )
    else:
        raise ValueError(_("“%(value)s” is not a date: %(hint)s.") % {"value": text, "hint": hint})
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise ValueError(_("“%(value)s” is not a real date: %(hint)s.") % {"value": text, "hint": hint}) from None


def read_date(value, *, order: str = "") -> datetime.date | None:
    """A date cell: a date from an XLSX cell as it is, text as ISO, YYYY/M/D, or (with the
    company's `order`, or when only one reading is possible) D/M/YYYY or M/D/YYYY."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    hint = date_format_hint()
    # An exported date and time read back as a date keeps its date part.
    date_part = re.split(r"[ T]", text, maxsplit=1)[0]
    if date_part != text and _TIME.fullmatch(text[len(date_part) :].strip()) is None:
        raise ValueError(_("“%(value)s” is not a date: %(hint)s.") % {"value": text, "hint": hint})
    return _date_of(date_part, order, hint)


def read_datetime(value, *, zone, order: str = "") -> datetime.datetime | None:
    """A date-and-time cell as an aware datetime. With an offset (as the export writes) it is
    that instant; without one it is the wall-clock time in `zone`, the company's."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time(), tzinfo=zone)
    text = str(value).strip()
    if not text:
        return None
    hint = datetime_format_hint()
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    if _OFFSET.search(text):
        raise ValueError(_("“%(value)s” is not a date and time: %(hint)s.") % {"value": text, "hint": hint})
    date_part, _space, time_part = text.replace("T", " ", 1).partition(" ")
    day = _date_of(date_part, order, hint)
    clock = datetime.time()
    if time_part.strip():
        match = _TIME.fullmatch(time_part.strip())
        if match is None:
            raise ValueError(_("“%(value)s” is not a date and time: %(hint)s.") % {"value": text, "hint": hint})
        before, hour, minute, second, after = match.groups()
        hour, minute, second = int(hour), int(minute), int(second or 0)
        meridiem = (before or after or "").upper()
        if meridiem:
            if not 1 <= hour <= 12:
                raise ValueError(_("“%(value)s” is not a date and time: %(hint)s.") % {"value": text, "hint": hint})
            hour = hour % 12 + (12 if meridiem in ("PM", "下午") else 0)
        try:
            clock = datetime.time(hour, minute, second)
        except ValueError:
            raise ValueError(_("“%(value)s” is not a real time: %(hint)s.") % {"value": text, "hint": hint}) from None
    return datetime.datetime.combine(day, clock, tzinfo=zone)


# --- what an import would do, row by row ------------------------------------------------------

ROW_KINDS = ("new", "update", "skip", "invalid", "error")


@dataclass
class ReportRow:
    """One data row of the file: `number` as the spreadsheet shows it (the header is row 1),
    what the import would do with it, its values as they would be stored, the old value of
    each changed cell (updates), and its errors by column index (None: the whole row)."""

    number: int
    kind: str
    cells: list[str]
    old: dict[int, str] = field(default_factory=dict)
    errors: dict[int | None, list[str]] = field(default_factory=dict)

    def shown_cells(self) -> list[dict]:
        return [
            {"value": value, "changed": index in self.old, "old": self.old.get(index, ""),
             "errors": self.errors.get(index, [])}
            for index, value in enumerate(self.cells)
        ]  # fmt: skip

    @property
    def row_errors(self) -> list[str]:
        return self.errors.get(None, [])


@dataclass
class ImportReport:
    """A preview of an import, kept between the upload and the confirm (see `report_save`)."""

    columns: list[tuple[str, str]]  # (the file's header, what it is)
    ignored: list[str] = field(default_factory=list)  # headers the import does not read
    rows: list[ReportRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ROW_KINDS, 0)
        for row in self.rows:
            counts[row.kind] += 1
        return counts

    @property
    def valid(self) -> bool:
        return not self.file_errors and not any(row.kind in ("invalid", "error") for row in self.rows)

    def rows_of(self, kind: str | None) -> list[ReportRow]:
        if kind == "errors":
            return [row for row in self.rows if row.kind in ("invalid", "error")]
        return [row for row in self.rows if row.kind == kind] if kind in ROW_KINDS else self.rows


def report_key(name: str) -> str:
    return f"{ImportUploadStorage.CACHE_PREFIX}report-{name}"


def report_save(name: str, report: ImportReport | dict, *, suffix: str = "") -> None:
    """Keep a report (compressed: a 100,000-row preview is tens of MB as objects) as long as
    its uploaded file."""
    from django.core.cache import cache

    cache.set(report_key(name) + suffix, zlib.compress(pickle.dumps(report), 1), ImportUploadStorage.CACHE_LIFETIME)


def report_load(name: str, *, suffix: str = ""):
    from django.core.cache import cache

    data = cache.get(report_key(name) + suffix)
    # Only the server writes these cache keys (the cache pickles every value anyway).
    return pickle.loads(zlib.decompress(data)) if data is not None else None  # noqa: S301
