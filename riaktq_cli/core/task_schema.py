"""The machinery of the task schema: a field's declaration, and what is derived from it.

task.py declares each field of a task once (`Field`: name, type, default,
bounds, whether a store's index reads it, how it shows in the JSON view).
Everything that used to list the fields by hand is derived from that one
tuple here: the Task record's constructor (`constructor`), its JSON
document -- the Riak value and the opening notes (`to_doc`/`from_doc`) --,
its JSON view (`to_view`), and the SQLite table, its migrations and its row
mappers (store/sqlite.py, from `column_type` and the kinds' column codecs).
So adding a task field is one `Field(...)` line plus the transitions that
set it.

How a value is kept is its `Kind`: a text, number, bytes, tag set or
history, each with its encoding in a JSON document, in an SQLite column
and in the JSON view. None of this imports json: `riaktq open` stays fast.
"""

import binascii

from riaktq_cli.core import history as hist
from riaktq_cli.core.task_checks import check_int

SHOWN, ASKED, HIDDEN = "shown", "asked", "hidden"   # Field.view: always, with `get --history`, never
_MISSING = object()
_NONE = type(None)


class Kind:
    """How one kind of value is kept. Each codec maps a non-None value; None
    means the value is kept as it is (the common case costs no call)."""

    __slots__ = ("sql", "to_doc", "from_doc", "to_column", "from_column", "to_view", "normal", "null_column")

    def __init__(self, sql, *, to_doc=None, from_doc=None, to_column=None, from_column=None, to_view=None,
                 normal=None, null_column=False):
        self.sql = sql                  # SQLite column type
        self.to_doc, self.from_doc = to_doc, from_doc            # JSON document (Riak value, notes)
        self.to_column, self.from_column = to_column, from_column  # SQLite column
        self.to_view = to_view          # JSON view; None: as in the document
        self.normal = normal            # applied by the constructor (tuple(tags))
        self.null_column = null_column  # the column holds NULL for an empty value


# --- encodings --------------------------------------------------------------

def b64(data):
    """Standard base64 text. binascii rather than the base64 module, which
    imports re and costs `riaktq open` a few milliseconds."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text):
    return binascii.a2b_base64(text)


def bytes_view(data):
    """UTF-8 text when the bytes decode, else {"base64": ...}: lossless JSON."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": b64(data)}


# Tags are stored as a JSON list. Most tasks have none; for those the
# literal "[]" spares `riaktq open` the import of json (and of re behind it).
def tags_to_text(tags):
    if not tags:
        return "[]"
    import json
    return json.dumps(list(tags))


def tags_from_text(text):
    if text == "[]":
        return ()
    import json
    return tuple(json.loads(text))


TEXT = Kind("TEXT")
INTEGER = Kind("INTEGER", from_doc=int)    # int(): a document's 3.0 is 3
REAL = Kind("REAL")
BYTES = Kind("BLOB", to_doc=b64, from_doc=unb64, from_column=bytes, to_view=bytes_view)
TAGS = Kind("TEXT", to_doc=list, from_doc=tuple, to_column=tags_to_text, from_column=tags_from_text, normal=tuple)
HISTORY = Kind("TEXT", to_doc=hist.to_record, from_doc=hist.from_record, to_column=hist.to_text,
               from_column=hist.from_text, to_view=hist.view, normal=tuple, null_column=True)
KIND_OF_TYPE = {str: TEXT, int: INTEGER, float: REAL, bytes: BYTES}


class Field:
    """One field of a task, declared once (see task.FIELDS).

    name: the attribute and the SQLite column. type: a Python type, `| None`
    when the field may be unset. default: the constructor's (None for an
    optional field unless given; only the key may have none). json: its key
    in the JSON document and view (default: the name). kind: how it is kept
    (default: from the type). required: a document without it is not a
    riaktq task (reading it raises KeyError: the stores skip such values).
    bounds: (low, high) a user-given whole number must stay within; check: a
    function that checks a user-given value instead. indexed: an index of a
    store reads it (SQLite's indexes, Riak's 2i terms; tests/test_task_schema
    checks the claim). fixed: set when the task is opened, never changed by
    a transition (the SQLite UPDATE leaves it out). view: SHOWN, ASKED (only
    with `get --history`) or HIDDEN. primary: the key of both stores.
    """

    __slots__ = ("name", "type", "optional", "default", "json", "kind", "required", "bounds", "check",
                 "indexed", "fixed", "view", "primary", "doc")

    def __init__(self, name, type, default=_MISSING, *, json=None, kind=None, required=False, bounds=None,
                 check=None, indexed=False, fixed=False, view=SHOWN, primary=False, doc=""):
        args = getattr(type, "__args__", ())      # (str, NoneType) of `str | None`
        self.name, self.type, self.json = name, type, json or name
        self.optional = _NONE in args
        base = next(a for a in args if a is not _NONE) if self.optional else getattr(type, "__origin__", type)
        self.kind = kind or KIND_OF_TYPE[base]
        self.default = None if default is _MISSING and self.optional else default
        self.required, self.bounds, self.indexed, self.fixed = required, bounds, indexed, fixed
        self.view, self.primary, self.doc = view, primary, doc
        if check is None and bounds is not None:
            label = name.replace("_", " ")
            check = lambda value: check_int(value, label, *bounds)    # noqa: E731
        self.check = check

    @property
    def has_default(self):
        return self.default is not _MISSING

    def __repr__(self):
        return f"Field({self.name!r})"


# --- derived: the record ----------------------------------------------------

def constructor(fields):
    """The record's __init__, with plain assignments as a hand-written one
    has (the scheduler builds several Tasks per task it moves). Compiled
    once, at import, the way dataclasses builds its __init__ -- without
    importing dataclasses, whose `inspect` alone costs more start-up time
    than the rest of `riaktq open`."""
    params, lines, scope = [], [], {}
    for f in fields:
        if f.has_default:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif params and "=" in params[-1]:
            raise ValueError(f"field {f.name} has no default but follows one that has")
        else:
            params.append(f.name)
        value = f.name
        if f.kind.normal is not None:
            scope[f"_normal_{f.name}"] = f.kind.normal
            value = f"_normal_{f.name}({f.name})"
        lines.append(f"    self.{f.name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
    exec(source, scope)   # noqa: S102 -- our own declarations, not input
    init = scope["__init__"]
    init.__doc__ = "One argument per declared field (task.FIELDS), in their order."
    return init


def checked(by_name, given):
    """`given` (field name -> a user's value) through each field's check
    (`by_name`: field name -> Field); an optional field's None stays None."""
    out = {}
    for name, value in given.items():
        field = by_name[name]
        out[name] = value if value is None and field.optional or field.check is None else field.check(value)
    return out


# --- derived: the JSON document and view -------------------------------------

def to_doc(fields, values):
    """The JSON document of a task's `values` (in field order): what both
    Riak and the opening notes keep, base64 for bytes."""
    doc = {}
    for f, value in zip(fields, values):
        encode = f.kind.to_doc
        doc[f.json] = value if encode is None or value is None else encode(value)
    return doc


def from_doc(fields, doc):
    """Constructor arguments (in field order) from a JSON document. A
    required key that is missing raises KeyError, a value of the wrong type
    TypeError or ValueError: not a riaktq task. Fields a document lacks (one
    written before they existed) take their default."""
    values = []
    for f in fields:
        value = doc[f.json] if f.required else doc.get(f.json)
        if value is None and not f.required:
            value = f.default
        elif f.kind.from_doc is not None:
            value = f.kind.from_doc(value)
        values.append(value)
    return values


def to_view(fields, values, asked=False):
    """The JSON view: the document with bytes as text (or {"base64": ...});
    ASKED fields only when `asked`, HIDDEN ones never."""
    view = {}
    for f, value in zip(fields, values):
        if f.view == HIDDEN or f.view == ASKED and not asked:
            continue
        encode = f.kind.to_view or f.kind.to_doc
        view[f.json] = value if encode is None or value is None else encode(value)
    return view


# --- derived: SQLite ----------------------------------------------------------

def sql_literal(value):
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def column_type(field):
    """The SQLite column declaration. A NOT NULL column other than the key
    has a DEFAULT (the field's default, as the column keeps it), so a
    database made before the field existed can gain the column by ALTER
    TABLE (SqliteStore._migrate)."""
    if field.primary:
        return f"{field.kind.sql} PRIMARY KEY"
    if field.optional or field.kind.null_column:
        return field.kind.sql
    default = field.default if field.kind.to_column is None else field.kind.to_column(field.default)
    return f"{field.kind.sql} NOT NULL DEFAULT {sql_literal(default)}"
