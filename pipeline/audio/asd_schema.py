"""Generic schema walker for Ableton ``.asd`` documents (internal to :mod:`pipeline.audio.asd`).

A document carries class definitions (name, field count, per field a UTF-16 name and either a
primitive type code or a class reference) and then the root object's values packed in schema
order.  :func:`read_schema` parses the definitions, :class:`Decoder` decodes values into plain
Python: structs become ``dict``, lists :class:`AsdList`, arrays :class:`AsdArray`, primitive
arrays read-only ``numpy`` views of the input.

Every read is bounds-checked, every count is checked against the remaining bytes before any
allocation or loop, nesting depth and total decoding work are bounded, and every failure is an
:class:`AsdError`.  Error text is only built when an error is raised (parsing stays cheap).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_DEPTH = 32  # class nesting depth (real files: < 6)
MAX_INLINE_STRUCTS = 4096  # structs one value may inline (real SampleData: ~50)
_SCHEMA_CACHE_SIZE = 64

T_BOOL, T_I32, T_F32, T_STR, T_F64 = 0x10, 0x11, 0x12, 0x14, 0x17
ARRAY_DTYPES: Mapping[int, np.dtype] = {
    0x31: np.dtype("u1"),
    0x32: np.dtype("<u2"),  # u16 / float16 bits
    0x35: np.dtype("<u4"),
    0x40: np.dtype("<f4"),
}
_SCALAR_SIZES: Mapping[int, int] = {T_BOOL: 1, T_I32: 4, T_F32: 4, T_F64: 8}
_PRIMITIVE_CODES = frozenset(_SCALAR_SIZES) | {T_STR} | frozenset(ARRAY_DTYPES)
KIND_LIST, KIND_ARRAY = -1, -3

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


class AsdError(ValueError):
    """A malformed or unusable ``.asd`` file; ``str()`` is ``"<file>: <reason>"``.

    Raise it as ``AsdError(path, reason)``; ``AsdError("<file>: <reason>")`` also works.
    """

    def __init__(self, path: str, reason: str | None = None) -> None:
        if reason is None:
            super().__init__(path)
            self.path, _, self.reason = path.partition(": ") if ": " in path else ("", "", path)
        else:
            super().__init__(path, reason)
            self.path, self.reason = path, reason

    def __str__(self) -> str:
        if len(self.args) == 1:
            return str(self.args[0])
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class AsdList:
    """Decoded list: ``next_id`` is an id allocator (not a count); items are (class, id, fields)."""

    next_id: int
    items: tuple[tuple[str, int, Mapping[str, Any]], ...]


@dataclass(frozen=True)
class AsdArray:
    """Decoded array value: element class name and the elements' fields."""

    element_class: str
    items: tuple[Mapping[str, Any], ...]


class Reader:
    """Bounds-checked little-endian cursor over ``data``.

    ``path`` holds the labels of what is being decoded (``["SampleData.WarpMarkers"]``); it
    and the ``what`` arguments (constants) are only formatted when an error is raised.
    """

    __slots__ = ("data", "name", "path", "pos", "size")

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.pos = 0
        self.size = len(data)
        self.path: list[str] = []

    def error(self, reason: str) -> AsdError:
        return AsdError(self.name, reason)

    def _label(self, what: str) -> str:
        return f"{' > '.join(self.path)} {what}" if self.path else what

    def truncated(self, pos: int, what: str) -> AsdError:
        return self.error(f"truncated at byte {pos} while reading {self._label(what)}")

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> int:
        """Reserve ``n`` bytes; return their start offset."""
        pos = self.pos
        if n > self.size - pos:
            raise self.truncated(pos, what)
        self.pos = pos + n
        return pos

    def u8(self, what: str) -> int:
        pos = self.pos
        if pos >= self.size:
            raise self.truncated(pos, what)
        self.pos = pos + 1
        return self.data[pos]

    def u32(self, what: str) -> int:
        return _U32.unpack_from(self.data, self.need(4, what))[0]

    def i32(self, what: str) -> int:
        return _I32.unpack_from(self.data, self.need(4, what))[0]

    def count(self, elem_size: int, what: str, unit: str = "elements") -> int:
        """Read a u32 count and check that ``count * elem_size`` bytes remain."""
        at = self.pos
        if at + 4 > self.size:
            raise self.truncated(at, f"{what} length")
        n = _U32.unpack_from(self.data, at)[0]
        self.pos = at + 4
        self.check_fits(n, elem_size, at, what, unit)
        return n

    def check_fits(self, n: int, elem_size: int, at: int, what: str, unit: str) -> None:
        need = n * (elem_size if elem_size > 0 else 1)
        if need > self.size - self.pos:
            raise self.error(
                f"truncated: {self._label(what)} at byte {at} declares {n} {unit} "
                f"(>= {need} bytes) but only {self.size - self.pos} bytes remain"
            )

    def name_str(self, what: str) -> str:
        """A name: ``00``, u8 length, ASCII.  ``""`` is the list terminator ``00 00``."""
        pos, data = self.pos, self.data
        if pos + 2 > self.size:
            raise self.truncated(pos, what)
        if data[pos] != 0:
            raise self.error(
                f"expected a name (byte 00) at byte {pos} while reading {self._label(what)}, "
                f"got {data[pos]:#04x}"
            )
        end = pos + 2 + data[pos + 1]
        if end > self.size:
            raise self.truncated(pos, what)
        self.pos = end
        if end == pos + 2:
            return ""
        try:
            return data[pos + 2 : end].decode("ascii")
        except UnicodeDecodeError:
            raise self.error(
                f"non-ASCII name at byte {pos} while reading {self._label(what)}"
            ) from None

    def utf16(self, what: str, *, strict: bool) -> str:
        """A u32 character count, then UTF-16LE (``strict=False`` replaces bad code units)."""
        n = self.count(2, what, "characters")
        start = self.pos
        self.pos = start + 2 * n
        try:
            return self.data[start : self.pos].decode(
                "utf-16-le", "strict" if strict else "replace"
            )
        except UnicodeDecodeError:
            raise self.error(
                f"invalid UTF-16 at byte {start} while reading {self._label(what)}"
            ) from None


@dataclass(frozen=True)
class ClassDef:
    """One class definition; ``fields`` holds (name, primitive code or class name, label)."""

    name: str
    kind: int  # >= 0: struct with that many fields; -1 list; -3 array
    fields: tuple[tuple[str, int | str, str], ...]


@dataclass
class Schema:
    """The class definitions of one document, plus memoised value shapes."""

    raw: bytes  # the exact definition bytes (cache key check)
    classes: Mapping[str, ClassDef]
    shapes: dict[str, tuple[int, int]]


_schema_cache: dict[tuple[int, bytes], Schema] = {}
_schema_cache_lock = threading.Lock()


def read_schema(r: Reader, n_classes: int) -> Schema:
    """Read ``n_classes`` class definitions at ``r.pos``.

    Identical definition bytes (files written by the same Live version) are parsed once and
    reused from a small cache; the result does not depend on anything but those bytes.
    """
    start = r.pos
    key = (n_classes, r.data[start : start + 64])
    cached = _schema_cache.get(key)
    if cached is not None and r.data.startswith(cached.raw, start):
        r.pos = start + len(cached.raw)
        return cached
    classes = _read_class_defs(r, n_classes)
    schema = Schema(r.data[start : r.pos], classes, {})
    with _schema_cache_lock:
        if len(_schema_cache) >= _SCHEMA_CACHE_SIZE:
            _schema_cache.pop(next(iter(_schema_cache)))
        _schema_cache[key] = schema
    return schema


def _read_class_defs(r: Reader, n_classes: int) -> dict[str, ClassDef]:
    if n_classes < 0 or n_classes * 6 > r.remaining():  # each definition needs >= 6 bytes
        raise r.error(f"invalid class definition count {n_classes} at byte {r.pos - 4}")
    classes: dict[str, ClassDef] = {}
    cname = ""
    try:
        for _ in range(n_classes):
            cname = ""
            at = r.pos
            cname = r.name_str("class name")
            if not cname:
                raise r.error(f"empty class name at byte {at}")
            if cname in classes:
                raise r.error(f"class defined twice (byte {at})")
            classes[cname] = _read_class_def(r, cname)
    except AsdError as err:  # add the context here: no message work on the happy path
        where = (
            f"definition of class {cname!r}"
            if cname
            else f"class definition {len(classes) + 1} of {n_classes}"
        )
        raise r.error(f"{err.reason} (in {where})") from None
    return classes


def _read_class_def(r: Reader, cname: str) -> ClassDef:
    kind_at = r.pos
    kind = r.i32("field count")
    if kind < 0 and kind not in (KIND_LIST, KIND_ARRAY):
        raise r.error(f"invalid field count {kind} at byte {kind_at}")
    if kind * 5 > r.remaining():  # each field needs >= 5 bytes
        raise r.error(f"claims {kind} fields at byte {kind_at}; file too short")
    fields: dict[str, tuple[str, int | str, str]] = {}
    for _ in range(max(kind, 0)):
        fname = r.utf16("field name", strict=True)
        if fname in fields:
            raise r.error(f"field {fname!r} appears twice")
        t_at = r.pos
        code = r.u8("field type")
        ftype: int | str
        if code == 0:
            r.pos = t_at
            ftype = r.name_str("field class reference")
            if not ftype:
                raise r.error(f"empty class reference for field {fname!r} at byte {t_at}")
        elif code in _PRIMITIVE_CODES:
            ftype = code
        else:
            raise r.error(f"unknown type code {code:#04x} for field {fname!r} at byte {t_at}")
        fields[fname] = (fname, ftype, f"{cname}.{fname}")
    return ClassDef(cname, kind, tuple(fields.values()))


class Decoder:
    """Decodes the values of one document against its schema."""

    def __init__(self, r: Reader, schema: Schema) -> None:
        self.r = r
        self.classes = schema.classes
        self.shapes = schema.shapes
        # Struct visits allowed: real files use ~50 plus one per list/array element.
        self.budget = r.size + 10_000
        self._open: list[str] = []

    def cls(self, name: str, context: str) -> ClassDef:
        c = self.classes.get(name)
        if c is None:
            raise self.r.error(f"{context} refers to undefined class {name!r}")
        return c

    def shape(self, name: str) -> tuple[int, int]:
        """(fewest bytes a value of class ``name`` occupies, structs inlined in it).

        Rejects classes that inline themselves, nest deeper than MAX_DEPTH or expand to more
        than MAX_INLINE_STRUCTS inline structs (exponential fan-out in a hostile schema).
        """
        cached = self.shapes.get(name)
        if cached is not None:
            return cached
        c = self.cls(name, "schema")
        if c.kind < 0:
            shape = (6, 1)  # list: next-id + terminator; array: count + element class name
        else:
            if name in self._open or len(self._open) >= MAX_DEPTH:
                raise self.r.error(
                    f"class {name!r} contains itself or nests deeper than {MAX_DEPTH}"
                )
            self._open.append(name)
            size, nodes = 0, 1
            for _, ftype, _ in c.fields:
                if isinstance(ftype, str):
                    fsize, fnodes = self.shape(ftype)
                    size, nodes = size + fsize, nodes + fnodes
                else:
                    size += _SCALAR_SIZES.get(ftype, 4)
                if nodes > MAX_INLINE_STRUCTS:
                    raise self.r.error(
                        f"class {name!r} expands to more than {MAX_INLINE_STRUCTS} inline structs"
                    )
            self._open.pop()
            shape = (size, nodes)
        self.shapes[name] = shape
        return shape

    def root(self, name: str) -> dict[str, Any]:
        """Decode the document's root object of class ``name``."""
        c = self.cls(name, f"document {name!r}")
        self.shape(name)
        return self.struct_value(c, 0)

    def struct_value(self, c: ClassDef, depth: int) -> dict[str, Any]:
        r = self.r
        if c.kind < 0:
            raise r.error(f"class {c.name!r} is a list/array, expected a struct")
        if depth > MAX_DEPTH:
            raise r.error(f"class nesting deeper than {MAX_DEPTH} (at class {c.name!r})")
        self.budget -= 1
        if self.budget < 0:
            raise r.error("schema too complex for the file size (decoding budget exhausted)")
        out: dict[str, Any] = {}
        path = r.path
        for fname, ftype, label in c.fields:
            path.append(label)
            if isinstance(ftype, int):
                out[fname] = self.primitive(ftype)
            else:
                out[fname] = self.class_value(ftype, label, depth + 1)
            path.pop()
        return out

    def class_value(self, cname: str, label: str, depth: int) -> Any:
        c = self.classes.get(cname)
        if c is None:
            raise self.r.error(f"field {label} refers to undefined class {cname!r}")
        if c.kind == KIND_LIST:
            return self.list_value(label, depth)
        if c.kind == KIND_ARRAY:
            return self.array_value(label, depth)
        return self.struct_value(c, depth)

    def _element_class(self, ename: str, label: str, container: str) -> ClassDef:
        ec = self.classes.get(ename)
        if ec is None:
            raise self.r.error(f"{label} {container} element refers to undefined class {ename!r}")
        if ec.kind < 0:
            raise self.r.error(f"{label} {container} element class {ename!r} is not a struct")
        self.shape(ename)
        return ec

    def list_value(self, label: str, depth: int) -> AsdList:
        r = self.r
        if depth > MAX_DEPTH:
            raise r.error(f"class nesting deeper than {MAX_DEPTH} (at list {label})")
        next_id = r.u32("list next-id")
        items: list[tuple[str, int, Mapping[str, Any]]] = []
        while True:
            ename = r.name_str("list element class")
            if not ename:
                return AsdList(next_id, tuple(items))
            ec = self._element_class(ename, label, "list")
            eid = r.u32("list element id")
            items.append((ename, eid, self.struct_value(ec, depth + 1)))

    def array_value(self, label: str, depth: int) -> AsdArray:
        r = self.r
        if depth > MAX_DEPTH:
            raise r.error(f"class nesting deeper than {MAX_DEPTH} (at array {label})")
        at = r.pos
        n = r.u32("array count")
        ename = r.name_str("array element class")
        ec = self._element_class(ename, label, "array")
        r.check_fits(n, self.shapes[ename][0], at, "array", f"{ename!r} elements")
        return AsdArray(ename, tuple(self.struct_value(ec, depth + 1) for _ in range(n)))

    def primitive(self, code: int) -> Any:
        r = self.r
        if code == T_F64:
            return _F64.unpack_from(r.data, r.need(8, "value"))[0]
        if code == T_BOOL:
            return r.u8("value")
        if code == T_I32:
            return _I32.unpack_from(r.data, r.need(4, "value"))[0]
        if code == T_F32:
            return _F32.unpack_from(r.data, r.need(4, "value"))[0]
        if code == T_STR:
            return r.utf16("string", strict=False)
        dtype = ARRAY_DTYPES[code]
        n = r.count(dtype.itemsize, "array")
        return np.frombuffer(
            r.data, dtype=dtype, count=n, offset=r.need(n * dtype.itemsize, "array")
        )
