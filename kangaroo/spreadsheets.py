"""Spreadsheet plumbing every import and export shares: CSV read in UTF-8 or Big5 and written
with a BOM (`SmartCSV`), an all-text XLSX writer (`TextXLSX`), formula escaping for cells a
spreadsheet would run (`escape_formula`), and where an import file waits between preview
and confirm (`ImportUploadStorage`). Nothing here knows a model.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from xml.sax.saxutils import escape as xml_escape

import tablib
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export.formats import base_formats
from import_export.tmp_storages import CacheStorage
from openpyxl.utils import get_column_letter

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str | None) -> str:
    """A text cell: "" for NULL (a department or host through an outer join), and a leading
    apostrophe on text a spreadsheet would run as a formula, which every spreadsheet shows
    as text (OWASP's advice against CSV injection)."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


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
