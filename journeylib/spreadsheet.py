"""The journey map as a spreadsheet a course team can edit, and back (``journey map export|import``).

The layout is derived from the pydantic model of the map (:class:`~journeylib.model.JourneyMap`),
so every field — including fields added to the model later — has a place:

* ``Map`` — one row per single field (name, description, dormancy days, the
  emotion scale's range, data settings, …) as ``field`` / ``value``, with a
  short ``about`` column that is not read back;
* one sheet per list of items: ``Stages``, ``Touchpoints``, ``Personas``,
  ``Interventions`` — one row per item in map order, one column per field
  (nested fields as ``target_emotion.label``; lists of text such as
  ``pain_points`` one item per line in a cell);
* ``KPIs`` — one row per KPI, its touchpoint in the first column, in order;
* ``Funnels`` (``funnel``, ``touchpoint``: one row per step) and ``Emotions``
  (``label``, ``valence``: the emotion scale);
* a hidden ``Lists`` sheet with the fixed choices (metrics, directions, …);
  stage, touchpoint, emotion and metric cells carry drop-down validation lists
  that read the workbook's own sheets, so a new stage is offered at once.

The same tables can be written as a folder of CSV files (``stages.csv``,
``touchpoints.csv``, …). Reading back validates the map with the same rules as
``journey.yml``; every problem names the sheet (or CSV file), the row and the
column. A carriage return in text becomes a line break in a workbook (XML keeps
no carriage returns; CSV does). Text cells that a spreadsheet would run as a formula are written with a
leading quote (:mod:`journeylib.safecells`) and restored on import; a formula
typed into a cell is refused. Export writes the fields as they are written in
``journey.yml`` (a field left out stays left out, so its default still follows
e.g. a changed target), and the round trip is lossless: the imported map equals
the exported one.

>>> import tempfile, pathlib
>>> from journeylib.model import load_map
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_workbook(map_data_from_file("data/sample/journey.yml"), tmp / "map.xlsx")
>>> read_map(tmp / "map.xlsx") == load_map("data/sample/journey.yml")
True
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from .errors import MapError
from .model import KPI_METRICS, JourneyMap, validation_problems
from .safecells import neutralise, restore

#: Sheet names of known parts of the map (path in the model -> sheet); others get a name from their path.
SHEET_NAMES = {
    "": "Map", "stages": "Stages", "touchpoints": "Touchpoints", "touchpoints.kpis": "KPIs", "personas": "Personas",
    "funnels": "Funnels", "interventions": "Interventions", "emotion_scale.labels": "Emotions",
}
#: Column headers of the two-column sheets that hold a mapping.
MAPPING_HEADERS = {"funnels": ("funnel", "touchpoint"), "emotion_scale.labels": ("label", "valence")}
#: The column that names the parent of a child row (``KPIs``: the touchpoint).
PARENT_HEADERS = {"touchpoints.kpis": "touchpoint"}
#: Drop-down lists: (sheet path, column) -> sheet path whose first column holds the choices.
REFERENCES = {
    ("touchpoints", "stage"): "stages",
    ("touchpoints", "target_emotion.label"): "emotion_scale.labels",
    ("touchpoints.kpis", "touchpoint"): "touchpoints",
    ("funnels", "touchpoint"): "touchpoints",
    ("interventions", "touchpoint"): "touchpoints",
}
#: A few words about each single field, shown in the ``about`` column of the Map sheet.
ABOUT = {
    "name": "Name of the journey (course)", "description": "What the course is", "attribution": "Shown on every report page",
    "dormancy_days": "No event for this many days = stopped", "emotion_scale.min": "Lowest valence",
    "emotion_scale.max": "Highest valence", "data.events": "Events file in the workspace", "data.learners": "Learners file",
    "data.separator": "CSV field separator", "data.timezone": "Zone of timestamps without one", "data.encoding": "Text encoding",
}
MAP_HEADERS = ("field", "value", "about")
LIST_ROWS = 500  # rows offered by the drop-down lists
_BASE = Path(__file__).name


# --------------------------------------------------------------------------
# The layout, from the model
# --------------------------------------------------------------------------

def _unwrap(tp: Any) -> Any:
    """``X`` for ``X | None`` / ``Optional[X]``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


_SCALARS = (str, int, float, bool, dt.date)


def _is_scalar(tp: Any) -> bool:
    tp = _unwrap(tp)
    return tp in _SCALARS or typing.get_origin(tp) is Literal


def _is_model(tp: Any) -> bool:
    tp = _unwrap(tp)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def kind_of(tp: Any) -> str:
    """How a field type is laid out: scalar, text_list, model, model_list, mapping, mapping_list or yaml.

    >>> from journeylib.model import Touchpoint
    >>> [kind_of(Touchpoint.model_fields[f].annotation) for f in ("name", "pain_points", "target_emotion", "kpis")]
    ['scalar', 'text_list', 'model', 'model_list']
    """
    tp = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_scalar(tp):
        return "scalar"
    if _is_model(tp):
        return "model"
    if origin is list and args:
        if _is_model(args[0]):
            return "model_list"
        if _is_scalar(args[0]):
            return "text_list" if _unwrap(args[0]) is str else "yaml"
    if origin is dict and len(args) == 2 and args[0] is str:
        if _is_scalar(args[1]):
            return "mapping"
        if typing.get_origin(args[1]) is list and _is_scalar(typing.get_args(args[1])[0]):
            return "mapping_list"
    return "yaml"


@dataclass
class Column:
    """One column of an item sheet: its header, the path inside the item and the value type."""

    header: str
    path: tuple[str, ...]
    annotation: Any
    kind: str  # scalar | text_list | yaml


@dataclass
class Table:
    """One sheet of the layout: ``kind`` is ``single`` (Map), ``items``, ``children`` or ``mapping``."""

    path: str
    kind: str
    columns: list[Column] = field(default_factory=list)
    model: type[BaseModel] | None = None
    parent: str | None = None  # children: the item table the rows belong to
    value_annotation: Any = None  # mapping: the type of the values

    @property
    def sheet(self) -> str:
        return SHEET_NAMES.get(self.path) or self.path.replace(".", " ").replace("_", " ").title()[:31]

    @property
    def headers(self) -> list[str]:
        if self.kind == "single":
            return list(MAP_HEADERS)
        if self.kind == "mapping":
            return list(MAPPING_HEADERS.get(self.path, ("key", "value")))
        lead = [PARENT_HEADERS.get(self.path, "parent")] if self.kind == "children" else []
        return lead + [c.header for c in self.columns]

    @property
    def csv_name(self) -> str:
        return self.sheet.lower().replace(" ", "_") + ".csv"


def _item_columns(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> tuple[list[Column], list[tuple[str, Any]]]:
    """Columns of an item model, and its lists of models (which become child sheets)."""
    cols: list[Column] = []
    children: list[tuple[str, Any]] = []
    for name, f in model.model_fields.items():
        path = prefix + (name,)
        kind = kind_of(f.annotation)
        if kind == "model":
            sub, _ = _item_columns(_unwrap(f.annotation), path)
            cols += sub
        elif kind == "model_list" and not prefix:
            children.append((name, typing.get_args(_unwrap(f.annotation))[0]))
        elif kind in ("scalar", "text_list"):
            cols.append(Column(".".join(path), path, f.annotation, kind))
        else:
            cols.append(Column(".".join(path), path, f.annotation, "yaml"))
    return cols, children


def layout(model: type[BaseModel] = JourneyMap) -> list[Table]:
    """The sheets of a map workbook, in order, derived from the model's fields.

    >>> [t.sheet for t in layout()]
    ['Map', 'Stages', 'Touchpoints', 'KPIs', 'Personas', 'Funnels', 'Interventions', 'Emotions']
    """
    single = Table("", "single", model=model)
    tables: list[Table] = [single]
    trailing: list[Table] = []

    def walk(m: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, f in m.model_fields.items():
            path = prefix + (name,)
            dotted = ".".join(path)
            kind = kind_of(f.annotation)
            if kind == "model":
                walk(_unwrap(f.annotation), path)
            elif kind == "model_list" and not prefix:
                item = typing.get_args(_unwrap(f.annotation))[0]
                cols, children = _item_columns(item)
                tables.append(Table(dotted, "items", cols, model=item))
                for child, child_model in children:
                    ccols, _ = _item_columns(child_model)
                    tables.append(Table(f"{dotted}.{child}", "children", ccols, model=child_model, parent=dotted))
            elif kind in ("mapping", "mapping_list"):
                value = typing.get_args(_unwrap(f.annotation))[1]
                t = Table(dotted, "mapping", value_annotation=value)
                (trailing if prefix else tables).append(t)
            else:
                single.columns.append(Column(dotted, path, f.annotation, kind if kind in ("scalar", "text_list") else "yaml"))

    walk(model, ())
    return tables + trailing


# --------------------------------------------------------------------------
# Values <-> cells
# --------------------------------------------------------------------------

def _list_cell(items: list) -> str:
    texts = [str(x) for x in items]
    if any("\n" in t or "\r" in t or not t.strip() or t != t.strip() or t.startswith("[") for t in texts):
        return json.dumps(texts, ensure_ascii=False)
    return "\n".join(texts)


def to_cell(value: Any, kind: str) -> Any:
    """A map value as a spreadsheet cell value (before neutralising text).

    >>> to_cell(["a", "b"], "text_list"), to_cell(0.5, "scalar"), to_cell({"k": 1}, "yaml")
    ('a\\nb', 0.5, '{k: 1}')
    """
    if value is None:
        return None
    if kind == "text_list":
        return _list_cell(list(value)) if value else None
    if kind == "yaml":
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**9).strip()
    if isinstance(value, float) and (not math.isfinite(value) or float(f"{value:.16g}") != value):
        return repr(value)  # a workbook keeps 16 digits: text keeps every bit (the model reads it back as a number)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def from_cell(value: Any, kind: str, annotation: Any) -> Any:
    """A cell value read back as the value the map model expects (the model checks it).

    >>> from_cell("a\\nb", "text_list", list[str]), from_cell(3, "scalar", str), from_cell(dt.datetime(2025, 5, 1), "scalar", dt.date)
    (['a', 'b'], '3', datetime.date(2025, 5, 1))
    """
    if kind == "text_list":
        text = str(value)
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [line for line in text.split("\n") if line.strip()]
    if kind == "yaml":
        return yaml.safe_load(str(value)) if isinstance(value, str) else value
    tp = _unwrap(annotation)
    if tp is str or (typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in typing.get_args(tp))):
        if isinstance(value, bool):
            return str(value).upper()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dt.datetime):
            return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
        return str(value) if not isinstance(value, str) else value
    if tp is dt.date and isinstance(value, dt.datetime):
        return value.date()
    if tp in (int, float) and isinstance(value, str):
        return value.strip()
    return value


def _blank(value: Any) -> bool:
    return value is None or value == ""


# --------------------------------------------------------------------------
# Map data -> rows
# --------------------------------------------------------------------------

def map_data_from_file(path: str | Path) -> dict:
    """The map as written in ``journey.yml`` (a dict), after checking it is a valid map.

    Raises :class:`~journeylib.errors.MapError` as :func:`~journeylib.model.load_map` does.

    >>> map_data_from_file("data/sample/journey.yml")["touchpoints"][0]["id"]
    'social_ad'
    """
    from .model import load_map

    load_map(path)  # one clear message for an invalid map
    return yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))


def _data_of(jmap: BaseModel | dict, model: type[BaseModel] = JourneyMap) -> dict:
    if isinstance(jmap, BaseModel):
        return jmap.model_dump(mode="python", exclude_defaults=True)
    model.model_validate(jmap)  # a valid map only
    return jmap


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def table_rows(data: dict, table: Table) -> list[list[Any]]:
    """The rows (header excluded) of one sheet for a map given as data.

    >>> rows = table_rows(map_data_from_file("data/sample/journey.yml"), layout()[3])
    >>> rows[0][:3]
    ['social_ad', 'conversion', 0.6]
    """
    if table.kind == "single":
        return [[c.header, to_cell(_get(data, c.path), c.kind), ABOUT.get(c.header, "")] for c in table.columns]
    value = _get(data, tuple(table.path.split(".")))
    if table.kind == "mapping":
        rows = []
        for key, v in (value or {}).items():
            for item in (v if isinstance(v, list) else [v]):
                rows.append([key, to_cell(item, "scalar")])
        return rows
    if table.kind == "items":
        return [[to_cell(_get(item, c.path), c.kind) for c in table.columns] for item in value or []]
    parent, child = table.path.rsplit(".", 1)
    rows = []
    for item in _get(data, tuple(parent.split("."))) or []:
        for sub in item.get(child) or []:
            rows.append([item.get("id")] + [to_cell(_get(sub, c.path), c.kind) for c in table.columns])
    return rows


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def _choices(table: Table) -> dict[str, list[str]]:
    """Fixed drop-down choices per column header (Literal and bool fields, KPI metrics)."""
    out: dict[str, list[str]] = {}
    for c in table.columns:
        tp = _unwrap(c.annotation)
        if typing.get_origin(tp) is Literal:
            out[c.header] = [str(a) for a in typing.get_args(tp)]
        elif tp is bool:
            out[c.header] = ["TRUE", "FALSE"]
    if table.path.endswith("kpis") and "metric" in table.headers:
        out["metric"] = list(KPI_METRICS)
    return out


def write_workbook(jmap: JourneyMap | dict, path: str | Path, *, model: type[BaseModel] = JourneyMap) -> Path:
    """Write the map as an ``.xlsx`` workbook (see the module notes for the layout).

    >>> import tempfile, pathlib, openpyxl
    >>> p = write_workbook(map_data_from_file("data/sample/journey.yml"), pathlib.Path(tempfile.mkdtemp()) / "m.xlsx")
    >>> openpyxl.load_workbook(p).sheetnames[:4]
    ['Map', 'Stages', 'Touchpoints', 'KPIs']
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    data = _data_of(jmap, model)
    tables = layout(model)
    wb = Workbook()
    wb.remove(wb.active)
    lists = wb.create_sheet("Lists")
    list_col = 0
    first_col = {t.path: t for t in tables}
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDE7F0")
    for t in tables:
        ws = wb.create_sheet(t.sheet)
        ws.append(t.headers)
        for cell in ws[1]:
            cell.font, cell.fill = bold, fill
        for r, row in enumerate(table_rows(data, t), start=2):
            for c, value in enumerate(row, start=1):
                cell = ws.cell(row=r, column=c)
                if isinstance(value, str):
                    value = value.replace("\r\n", "\n").replace("\r", "\n")  # a workbook cannot hold a carriage return
                    try:
                        cell.value = neutralise(value)
                    except ValueError as exc:  # characters a workbook cannot hold
                        raise MapError(f"cannot write to a workbook: {exc}", file=path, field=f"sheet {t.sheet}, row {r}") from None
                    cell.data_type = "s"
                    if "\n" in value:
                        cell.alignment = Alignment(wrap_text=True, vertical="top")
                else:
                    cell.value = value
                    if isinstance(value, dt.date):
                        cell.number_format = "yyyy-mm-dd"
        ws.freeze_panes = "A2" if t.kind == "single" else "B2"
        for c, header in enumerate(t.headers, start=1):
            letter = get_column_letter(c)
            longest = max([len(str(header))] + [len(str(v)) for v in next(ws.iter_cols(min_col=c, max_col=c, min_row=2, values_only=True), ())
                                                if v is not None and "\n" not in str(v)])
            ws.column_dimensions[letter].width = min(60, max(10, longest + 2))
        if t.kind == "single":
            ws["A1"].comment = Comment("One row per field of the map. Leave a value empty for the default. The 'about' column is not read.", "journeylib")
        # drop-down lists: references to the workbook's own sheets, and fixed choices
        for c, header in enumerate(t.headers, start=1):
            letter = get_column_letter(c)
            ref = REFERENCES.get((t.path, header))
            if ref and ref in first_col:
                target = first_col[ref].sheet
                formula = f"'{target}'!$A$2:$A${LIST_ROWS}"
            elif header in (fixed := _choices(t)):
                list_col += 1
                lc = get_column_letter(list_col)
                lists.cell(row=1, column=list_col, value=f"{t.sheet}.{header}")
                for i, choice in enumerate(fixed[header], start=2):
                    lists.cell(row=i, column=list_col, value=choice)
                formula = f"Lists!${lc}$2:${lc}${len(fixed[header]) + 1}"
            else:
                continue
            dv = DataValidation(type="list", formula1=formula, allow_blank=True, showErrorMessage=True,
                                errorTitle="Not in the list", error=f"Choose a value from the list ({header}).")
            dv.add(f"{letter}2:{letter}{LIST_ROWS}")
            ws.add_data_validation(dv)
    lists.sheet_state = "hidden"
    wb.move_sheet("Lists", offset=len(wb.sheetnames))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_csv_folder(jmap: JourneyMap | dict, folder: str | Path, *, model: type[BaseModel] = JourneyMap) -> list[Path]:
    """Write the map as one CSV file per sheet (UTF-8 with a byte-order mark, so spreadsheets read it).

    >>> import tempfile
    >>> [p.name for p in write_csv_folder(map_data_from_file("data/sample/journey.yml"), tempfile.mkdtemp())][:3]
    ['map.csv', 'stages.csv', 'touchpoints.csv']
    """
    data = _data_of(jmap, model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for t in layout(model):
        p = folder / t.csv_name
        with p.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(t.headers)
            for row in table_rows(data, t):
                w.writerow(["" if v is None else neutralise(v) if isinstance(v, str) else
                            v.isoformat() if isinstance(v, dt.date) else repr(v) if isinstance(v, float) else
                            str(v).upper() if isinstance(v, bool) else v for v in row])
        written.append(p)
    return written


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

@dataclass
class Cell:
    """Where a value was read: sheet (or CSV file), row number, column letter and header."""

    sheet: str
    row: int | None = None
    column: str | None = None
    header: str | None = None

    def __str__(self) -> str:
        s = f"sheet {self.sheet}"
        if self.row is not None:
            s += f", row {self.row}"
        if self.header is not None:
            s += f", column {self.column} ({self.header})" if self.column else f", column {self.header} (not in the sheet)"
        return s


def _letter(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(i + 1)


@dataclass
class _Sheet:
    name: str
    rows: list[tuple[int, list[Any]]]  # (row number, cells), header excluded
    headers: list[str]


def _read_xlsx(path: Path) -> dict[str, _Sheet]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, data_only=False, read_only=False)
    except Exception as exc:  # zip, XML and format errors of a broken file
        raise MapError(f"cannot read the workbook: {type(exc).__name__}: {exc}", file=path) from None
    out = {}
    for ws in wb.worksheets:
        rows = []
        headers: list[str] = []
        for r, row in enumerate(ws.iter_rows(), start=1):
            values = []
            for c, cell in enumerate(row):
                if cell.data_type == "f":
                    raise MapError("this cell holds a formula; type the value itself", file=path,
                                   field=str(Cell(ws.title, r, _letter(c), headers[c] if c < len(headers) else None)))
                v = cell.value
                values.append(restore(v) if isinstance(v, str) else v)
            if r == 1:
                headers = ["" if v is None else str(v).strip() for v in values]
            else:
                rows.append((r, values))
        out[ws.title] = _Sheet(ws.title, rows, headers)
    return out


def _read_csv_folder(folder: Path, model: type[BaseModel] = JourneyMap) -> dict[str, _Sheet]:
    out = {}
    names = {t.csv_name: t.sheet for t in layout(model)}
    for p in sorted(folder.glob("*.csv")):
        if p.name not in names:
            continue
        try:
            with p.open(encoding="utf-8-sig", newline="") as fh:
                records = list(csv.reader(fh))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise MapError(f"cannot read: {exc}", file=p) from None
        if not records:
            continue
        headers = [h.strip() for h in records[0]]
        rows = [(i, [restore(v) if v != "" else None for v in rec]) for i, rec in enumerate(records[1:], start=2)]
        out[names[p.name]] = _Sheet(p.name, rows, headers)
    return out


class _Reader:
    """Turns sheets back into map data, remembering where each value came from."""

    def __init__(self, sheets: dict[str, _Sheet], file: Path, model: type[BaseModel] = JourneyMap):
        self.sheets, self.file, self.model = sheets, file, model
        self.where: dict[tuple, Cell] = {}

    def fail(self, message: str, cell: Cell) -> MapError:
        return MapError(message, file=self.file, field=str(cell))

    def columns(self, sheet: _Sheet, expected: list[str]) -> dict[str, int]:
        pos: dict[str, int] = {}
        for i, h in enumerate(sheet.headers):
            if not h:
                continue
            if h not in expected:
                raise self.fail(f"unknown column; columns: {', '.join(expected)}", Cell(sheet.name, 1, _letter(i), h))
            if h in pos:
                raise self.fail("column appears twice", Cell(sheet.name, 1, _letter(i), h))
            pos[h] = i
        return pos

    def cell(self, sheet: _Sheet, pos: dict[str, int], r: int, header: str) -> Cell:
        return Cell(sheet.name, r, _letter(pos[header]) if header in pos else None, header)

    @staticmethod
    def value(values: list[Any], pos: dict[str, int], header: str) -> Any:
        i = pos.get(header)
        return values[i] if i is not None and i < len(values) else None

    def convert(self, value: Any, col: Column, cell: Cell) -> Any:
        try:
            return from_cell(value, col.kind, col.annotation)
        except yaml.YAMLError as exc:
            raise self.fail(f"cannot read this cell as YAML: {str(exc).splitlines()[0]}", cell) from None

    def item(self, sheet: _Sheet, pos: dict[str, int], r: int, values: list[Any], columns: list[Column], loc: tuple) -> dict:
        item: dict = {}
        for col in columns:
            cell = self.cell(sheet, pos, r, col.header)
            for depth in range(1, len(col.path) + 1):
                self.where.setdefault(loc + col.path[:depth], cell)
            raw = self.value(values, pos, col.header)
            if _blank(raw):
                continue
            target = item
            for p in col.path[:-1]:
                target = target.setdefault(p, {})
            target[col.path[-1]] = self.convert(raw, col, cell)
        return item

    def read(self) -> dict:
        data: dict = {}
        tables = layout(self.model)
        items_by_id: dict[str, dict[str, dict]] = {}
        for t in tables:
            sheet = self.sheets.get(t.sheet)
            path = tuple(t.path.split(".")) if t.path else ()
            if sheet is None:
                if t.path in ("", "stages", "touchpoints"):
                    raise MapError(f"no sheet '{t.sheet}' (sheets: {', '.join(self.sheets) or 'none'})", file=self.file)
                continue
            pos = self.columns(sheet, t.headers)
            self.where.setdefault(path, Cell(sheet.name))
            rows = [(r, v) for r, v in sheet.rows if not all(_blank(x) for x in v)]
            if t.kind == "single":
                self.read_single(sheet, pos, rows, t, data)
            elif t.kind == "items":
                items = []
                for i, (r, values) in enumerate(rows):
                    self.where[path + (i,)] = Cell(sheet.name, r)
                    items.append(self.item(sheet, pos, r, values, t.columns, path + (i,)))
                if items:
                    data[path[0]] = items
                items_by_id[t.path] = {}
                for i, it in enumerate(items):
                    items_by_id[t.path].setdefault(str(it.get("id")), (i, it))
            elif t.kind == "children":
                self.read_children(sheet, pos, rows, t, items_by_id.get(t.parent, {}))
            else:
                self.read_mapping(sheet, pos, rows, t, data, path)
        return data

    def read_single(self, sheet, pos, rows, t: Table, data: dict) -> None:
        by_name = {c.header: c for c in t.columns}
        seen: set[str] = set()
        for r, values in rows:
            name = self.value(values, pos, "field")
            cell = self.cell(sheet, pos, r, "value")
            cell.header = str(name).strip() if not _blank(name) else "value"
            if _blank(name):
                raise self.fail("a value without a field name", self.cell(sheet, pos, r, "field"))
            name = str(name).strip()
            col = by_name.get(name)
            if col is None:
                raise self.fail(f"unknown field '{name}'; fields: {', '.join(by_name)}", self.cell(sheet, pos, r, "field"))
            if name in seen:
                raise self.fail(f"field '{name}' appears twice", self.cell(sheet, pos, r, "field"))
            seen.add(name)
            for depth in range(1, len(col.path) + 1):
                self.where.setdefault(col.path[:depth], cell)
            raw = self.value(values, pos, "value")
            if _blank(raw):
                continue
            target = data
            for p in col.path[:-1]:
                target = target.setdefault(p, {})
            target[col.path[-1]] = self.convert(raw, col, cell)

    def read_children(self, sheet, pos, rows, t: Table, parents: dict) -> None:
        parent_header = t.headers[0]
        child = t.path.rsplit(".", 1)[1]
        counts: dict[str, int] = {}
        for r, values in rows:
            key = self.value(values, pos, parent_header)
            key = None if _blank(key) else from_cell(key, "scalar", str)
            if key not in parents:
                known = ", ".join(list(parents)[:12])
                raise self.fail(f"unknown {parent_header} '{key}'; {parent_header}s: {known}" if key else f"name the {parent_header}",
                                self.cell(sheet, pos, r, parent_header))
            i, parent = parents[key]
            loc = (t.parent, i, child, counts.get(key, 0))
            counts[key] = counts.get(key, 0) + 1
            self.where[loc] = Cell(sheet.name, r)
            parent.setdefault(child, []).append(self.item(sheet, pos, r, values, t.columns, loc))

    def read_mapping(self, sheet, pos, rows, t: Table, data: dict, path: tuple) -> None:
        key_h, val_h = t.headers
        is_list = typing.get_origin(t.value_annotation) is list
        out: dict = {}
        col = Column(val_h, (), typing.get_args(t.value_annotation)[0] if is_list else t.value_annotation, "scalar")
        for r, values in rows:
            key = self.value(values, pos, key_h)
            if _blank(key):
                raise self.fail(f"name the {key_h}", self.cell(sheet, pos, r, key_h))
            key = from_cell(key, "scalar", str)
            raw = self.value(values, pos, val_h)
            value = None if _blank(raw) else self.convert(raw, col, self.cell(sheet, pos, r, val_h))
            if is_list:
                self.where.setdefault(path + (key,), Cell(sheet.name, r))
                self.where[path + (key, len(out.get(key, [])))] = self.cell(sheet, pos, r, val_h)
                out.setdefault(key, []).append(value)
            else:
                if key in out:
                    raise self.fail(f"{key_h} '{key}' appears twice", self.cell(sheet, pos, r, key_h))
                self.where[path + (key,)] = self.cell(sheet, pos, r, val_h)
                out[key] = value
        if out:
            target = data
            for p in path[:-1]:
                target = target.setdefault(p, {})
            target[path[-1]] = out

    def locate(self, loc: tuple) -> Cell | None:
        loc = tuple(loc)
        while loc:
            if loc in self.where:
                return self.where[loc]
            loc = loc[:-1]
        return None


def read_map_data(source: str | Path, *, model: type[BaseModel] = JourneyMap) -> tuple[dict, JourneyMap]:
    """Read a workbook (``.xlsx``) or a folder of CSV files into ``(map data, validated map)``.

    Raises :class:`~journeylib.errors.MapError` naming the file, the sheet,
    the row and the column of the first problem (all in ``.problems``).
    ``model`` is the map's model (a model with more fields lays them out too).

    >>> import tempfile, pathlib, openpyxl
    >>> p = write_workbook(map_data_from_file("data/sample/journey.yml"), pathlib.Path(tempfile.mkdtemp()) / "m.xlsx")
    >>> wb = openpyxl.load_workbook(p); wb["Touchpoints"]["C3"] = "nowhere"; wb.save(p)
    >>> read_map_data(p)
    Traceback (most recent call last):
    ...
    journeylib.errors.MapError: ...m.xlsx: sheet Touchpoints, row 3, column C (stage): unknown stage 'nowhere'; stages: awareness, consideration, onboarding, engagement, completion, retention
    """
    source = Path(source)
    if source.is_dir():
        sheets = _read_csv_folder(source, model)
    elif not source.exists():
        raise MapError("file not found", file=source)
    elif source.suffix.lower() in (".xlsx", ".xlsm"):
        sheets = _read_xlsx(source)
    else:
        raise MapError("expected an .xlsx workbook or a folder of CSV files written by `journey map export`", file=source)
    reader = _Reader(sheets, source, model)
    data = reader.read()
    try:
        return data, model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)

        def one(loc: tuple, msg: str) -> MapError:
            cell = reader.locate(loc)
            return MapError(msg, file=source, field=str(cell) if cell else ".".join(map(str, loc)) or None)

        first = one(*problems[0])
        first.problems = [str(one(loc, msg)) for loc, msg in problems]
        raise first from None


def read_map(source: str | Path) -> JourneyMap:
    """The validated map of a workbook or CSV folder (see :func:`read_map_data`).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp(); _ = write_csv_folder(map_data_from_file("data/sample/journey.yml"), folder)
    >>> read_map(folder).name
    'Data Analysis Foundations'
    """
    return read_map_data(source)[1]


def map_yaml(data: dict, *, source: str | Path | None = None) -> str:
    """``journey.yml`` text for map data read from a spreadsheet, fields in the model's order.

    >>> print(map_yaml({"name": "x", "stages": [{"id": "s", "name": "S"}]}).splitlines()[-3])
    stages:
    """
    order = list(JourneyMap.model_fields)
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    head = "# Journey map"
    if source is not None:
        head += f", imported from {Path(source).name} by `journey map import`"
    head += ".\n# Field reference: docs/data-contracts.md. Earlier versions: map_history/.\n\n"
    return head + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
