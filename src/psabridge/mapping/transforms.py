"""Named, pure transforms mapping files call by name: datetimes, HTML to text, trimming, names, error codes, lookups.

A mapping file never holds code and never names an import path: it names a transform registered here (``transform:
trim``, ``transform: [html_to_text, trim]``, ``transform: {lookup: {field: group_id}}``). Each transform declares a
pydantic model for its arguments, so a wrong argument is a located error when the file is loaded, not a crash during a
sync. Transforms do no I/O and read no clock; lookups read the vendor metadata handed to the mapping call.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from psabridge.markers import find_marker, strip_marker
from psabridge.vendordata import Choice, VendorMetadata

__all__ = [
    "TRANSFORMS",
    "Transform",
    "TransformContext",
    "TransformFailure",
    "extract_error_codes",
    "find_choice",
    "html_to_text",
    "parse_vendor_datetime",
    "register_transform",
]


class TransformFailure(Exception):
    """A transform could not handle a value; the engine turns this into a finding and keeps the raw value.

    Args:
        code: a short machine code (``invalid``, ``lookup_failed``, ``lookup_unavailable``).
        message: what was wrong, for the finding.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TransformContext:
    """What a transform may read besides its value: the vendor metadata and the record's scope (e.g. its board)."""

    metadata: VendorMetadata | None = None
    scope: str | None = None


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(_Args):
    """No arguments."""


_NO_ARGS = NoArgs()


TransformFn = Callable[[Any, Any, TransformContext], Any]


@dataclass(frozen=True, slots=True)
class Transform:
    """A registered transform.

    Attributes:
        name: the name mapping files use.
        fn: ``fn(value, args, context) -> value``; raises TransformFailure for a value it cannot handle.
        args: the pydantic model its arguments are validated with.
        elementwise: applied to each element when the value is a list (False: it takes the whole list).
        summary: one line for ``psabridge mapping check`` and the docs.
    """

    name: str
    fn: TransformFn
    args: type[BaseModel]
    elementwise: bool
    summary: str


TRANSFORMS: dict[str, Transform] = {}
"""Every transform a mapping file may name, by name."""


def register_transform(
    name: str, *, args: type[BaseModel] = NoArgs, elementwise: bool = True
) -> Callable[[TransformFn], TransformFn]:
    """Register a pure function as the transform ``name`` (its docstring's first line is its summary)."""

    def decorate(fn: TransformFn) -> TransformFn:
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} is already registered")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        TRANSFORMS[name] = Transform(name, fn, args, elementwise, summary)
        return fn

    return decorate


# --- text ------------------------------------------------------------------------------------------------------------


@register_transform("trim")
def _trim(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """Strip surrounding whitespace and normalise line endings; a blank string becomes empty (None)."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


@register_transform("lower")
def _lower(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """Lower-case a string."""
    return value.lower() if isinstance(value, str) else value


@register_transform("str")
def _str(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """Any scalar as a string (integral floats without '.0')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


@register_transform("int")
def _int(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """A whole number from a number or numeric string."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TransformFailure("invalid", f"{value!r} is not a number") from exc
    if not number.is_integer():
        raise TransformFailure("invalid", f"{value!r} is not a whole number")
    return int(number)


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformFailure("invalid", f"{value!r} is not a yes/no value")


@register_transform("bool")
def _bool(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """A yes/no value from true/false, 1/0 or the strings ServiceNow sends ("true", "false")."""
    return _to_bool(value)


@register_transform("negate")
def _negate(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """The opposite yes/no value (e.g. Autotask isNonBillable -> billable)."""
    return not _to_bool(value)


class _Truncate(_Args):
    length: int = Field(gt=0)


@register_transform("truncate", args=_Truncate)
def _truncate(value: Any, args: _Truncate, ctx: TransformContext) -> Any:
    """Cut text to at most ``length`` characters (e.g. ConnectWise summary, max 100)."""
    if isinstance(value, str) and len(value) > args.length:
        return value[: args.length - 1].rstrip() + "…"
    return value


class _Split(_Args):
    sep: str = ","


@register_transform("split", args=_Split)
def _split(value: Any, args: _Split, ctx: TransformContext) -> Any:
    """Split a delimited string into a list of trimmed, non-empty parts (e.g. ConnectWise ``resources``)."""
    if not isinstance(value, str):
        return value
    return [part.strip() for part in value.split(args.sep) if part.strip()]


class _Join(_Args):
    sep: str = " "


@register_transform("join", args=_Join, elementwise=False)
def _join(value: Any, args: _Join, ctx: TransformContext) -> Any:
    """Join the non-empty parts of a list with ``sep``."""
    if isinstance(value, list):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return args.sep.join(parts) or None
    return value


@register_transform("first", elementwise=False)
def _first(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """The first element of a list (None for an empty list)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


class _SplitName(_Args):
    part: Literal["first", "last", "display"] = "display"


@register_transform("split_name", args=_SplitName)
def _split_name(value: Any, args: _SplitName, ctx: TransformContext) -> Any:
    """Split a person's name: ``part: first|last``, or ``display`` to turn "Last, First" into "First Last"."""
    if not isinstance(value, str) or not value.strip():
        return value
    text = " ".join(value.split())
    if text.count(",") == 1:
        last, first = (p.strip() for p in text.split(","))
        if first and last:
            text = f"{first} {last}"
    if args.part == "display":
        return text
    first_name, _, last_name = text.partition(" ")
    return first_name if args.part == "first" else (last_name or None)


_SPACE = re.compile(r"[ \t\r\n\f]+")
_TAG_HINT = re.compile(r"<[a-zA-Z/!][^>]*>|&[#a-zA-Z0-9]+;")
_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_BR = re.compile(r"<br\b[^>]*>", re.IGNORECASE)
_LI = re.compile(r"<li\b[^>]*>", re.IGNORECASE)
_LINE = re.compile(r"</?(?:div|tr|ul|ol|table|hr|section|article|header|footer)\b[^>]*>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"</?(?:p|h[1-6]|pre|blockquote)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z!][^>]*>")
_BREAKS = re.compile(r"[\x00\x01 ]*[\x00\x01][\x00\x01 ]*")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(value: str) -> str:
    """Plain text from HTML: block tags become line breaks, entities are decoded, whitespace is tidied.

    Follows how a browser lays text out: whitespace in the source is one space, ``<br>`` and list items break lines,
    blocks (div, tr ...) start a new line, paragraphs (p, h1 ...) are separated by a blank line.
    """
    if not _TAG_HINT.search(value):
        return value.strip()
    text = _SPACE.sub(" ", _INVISIBLE.sub("", value))
    text = _BR.sub("\n", text)
    text = _LI.sub("\x00- ", text)
    text = _PARAGRAPH.sub("\x01", _LINE.sub("\x00", text))
    text = _BREAKS.sub(lambda m: "\n\n" if "\x01" in m.group() else "\n", _TAG.sub("", text))
    text = html.unescape(text).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@register_transform("html_to_text")
def _html_to_text(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """Plain text from HTML (Freshservice bodies, ServiceNow HTML fields); the original stays in the raw record."""
    return html_to_text(value) if isinstance(value, str) else value


@register_transform("text_to_html")
def _text_to_html(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """HTML from plain text (escaped, line breaks as <br>), for vendors whose bodies are HTML."""
    if not isinstance(value, str):
        return value
    return "<div>" + html.escape(value).replace("\n", "<br>") + "</div>"


@register_transform("marker")
def _marker(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """The psabridge idempotency key in a ``[psabridge:<key>]`` marker, or None (sets Note/TimeEntry origin)."""
    return find_marker(value) if isinstance(value, str) else None


@register_transform("strip_marker")
def _strip_marker(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """The text without psabridge markers, so technicians' words are compared, not our tag."""
    return strip_marker(value) if isinstance(value, str) else value


# --- error codes -----------------------------------------------------------------------------------------------------

_CODES = re.compile(
    r"(?<![0-9A-Za-z])0[xX](?P<hex>[0-9A-Fa-f]{4,8})(?![0-9A-Za-z])"
    r"|\b[Ee][Vv][Ee][Nn][Tt]\s*(?:[Ii][Dd])?\s*[:#]?\s*(?P<event>\d{1,5})\b"
    r"|\b[Ee][Rr][Rr][Oo][Rr](?:\s+[Cc][Oo][Dd][Ee])?\s*[:#]?\s*(?P<error>\d{3,6})\b"
    r"|\bAADSTS(?P<aadsts>\d{5,6})\b"
)


def extract_error_codes(texts: list[str]) -> tuple[str, ...]:
    """Error codes found in texts, in order of first appearance, without repeats.

    Finds hex codes (``0x80070005``, normalised to lower-case ``0x`` and upper-case digits), Windows event IDs
    (``Event ID 4625``, ``EventID: 4625``, ``event 41`` -> ``Event ID 4625``), numbered errors (``error 1603`` ->
    ``Error 1603``) and Entra ID sign-in errors (``AADSTS50076``).
    """
    seen: dict[str, None] = {}
    for text in texts:
        lowered = text.lower()  # every match of _CODES holds one of the four below
        if not ("0x" in lowered or "event" in lowered or "error" in lowered or "aadsts" in lowered):
            continue  # no code can be in it: a substring test is far cheaper than the pattern over the whole text
        for match in _CODES.finditer(text):
            kind = match.lastgroup
            number = match.group(kind or 0)
            if kind == "hex":
                code = "0x" + number.upper()
            elif kind == "event":
                code = f"Event ID {int(number)}"
            elif kind == "error":
                code = f"Error {int(number)}"
            else:
                code = f"AADSTS{number}"
            seen.setdefault(code, None)
    return tuple(seen)


@register_transform("error_codes", elementwise=False)
def _error_codes(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """Error texts, Windows event IDs, hex codes such as 0x80070005 and AADSTS codes found in the text(s)."""
    texts = value if isinstance(value, list) else [value]
    return extract_error_codes([html_to_text(t) for t in texts if isinstance(t, str) and t])


# --- datetimes and durations -----------------------------------------------------------------------------------------


class _Datetime(_Args):
    naive: str = Field(default="UTC", description="time zone of values that carry none (ServiceNow sends UTC)")

    @field_validator("naive")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone name (e.g. UTC, America/New_York)") from exc
        return value


def parse_vendor_datetime(value: Any, naive: str = "UTC") -> datetime:
    """A UTC datetime from the vendors' formats.

    ``2022-07-02T04:20:41Z`` (ConnectWise, Freshservice), ``2025-09-15T14:57:50.123Z`` (Autotask), ``2016-12-14
    02:46:44`` (ServiceNow, UTC when display values are off) and epoch seconds. A value without a zone is read in
    ``naive``.

    Raises:
        TransformFailure: the value is not a date and time.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise TransformFailure("invalid", f"{value!r} is not a date and time") from exc
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise TransformFailure("invalid", f"{value!r} is not a date and time") from exc
    else:
        raise TransformFailure("invalid", f"{value!r} is not a date and time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC if naive == "UTC" else ZoneInfo(naive))
    return parsed.astimezone(UTC)


@register_transform("datetime", args=_Datetime)
def _datetime(value: Any, args: _Datetime, ctx: TransformContext) -> Any:
    """A UTC datetime from ISO 8601, ServiceNow's "YYYY-MM-DD HH:MM:SS" (UTC) or epoch seconds."""
    return parse_vendor_datetime(value, args.naive)


@register_transform("iso_utc")
def _iso_utc(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """A datetime as ISO 8601 UTC text with a Z, to the second (``2026-05-18T15:00:00Z``): for write-back."""
    moment = parse_vendor_datetime(value)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Duration(_Args):
    unit: Literal["hours", "minutes", "seconds", "hh:mm", "glide"] = "minutes"


@register_transform("minutes", args=_Duration)
def _minutes(value: Any, args: _Duration, ctx: TransformContext) -> Any:
    """Whole minutes from hours (ConnectWise, Autotask), seconds, "hh:mm" (Freshservice) or a ServiceNow duration.

    A ServiceNow ("glide") duration is a datetime after 1970-01-01 00:00:00, e.g. "1970-01-01 01:30:00" = 90.
    """
    try:
        if args.unit == "hh:mm":
            hours, _, minutes = str(value).strip().partition(":")
            return int(hours or 0) * 60 + int(minutes or 0)
        if args.unit == "glide":
            start = datetime(1970, 1, 1, tzinfo=UTC)
            delta: timedelta = parse_vendor_datetime(value) - start
            return max(0, round(delta.total_seconds() / 60))
        number = float(value)
    except (TypeError, ValueError, TransformFailure) as exc:
        raise TransformFailure("invalid", f"{value!r} is not a duration in {args.unit}") from exc
    factor = {"hours": 60.0, "minutes": 1.0, "seconds": 1 / 60}[args.unit]
    return max(0, round(number * factor))


# --- structures ------------------------------------------------------------------------------------------------------


class _Pairs(_Args):
    key: str = "name"
    value: str = "value"


@register_transform("pairs_to_dict", args=_Pairs, elementwise=False)
def _pairs_to_dict(value: Any, args: _Pairs, ctx: TransformContext) -> Any:
    """A dict from a list of {key, value} objects (Autotask userDefinedFields, ConnectWise customFields)."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for item in value:
        if isinstance(item, Mapping) and item.get(args.key) not in (None, ""):
            out[str(item[args.key])] = item.get(args.value)
    return out


class _Prefix(_Args):
    prefix: str = Field(min_length=1)


@register_transform("pick_prefix", args=_Prefix, elementwise=False)
def _pick_prefix(value: Any, args: _Prefix, ctx: TransformContext) -> Any:
    """The keys of a dict that start with ``prefix`` (ServiceNow custom fields start with u_)."""
    if not isinstance(value, Mapping):
        return value
    return {k: v for k, v in value.items() if isinstance(k, str) and k.startswith(args.prefix)}


# --- metadata lookups ------------------------------------------------------------------------------------------------


def find_choice(
    metadata: VendorMetadata,
    field: str,
    *,
    value: str | None = None,
    label: str | None = None,
    scope: str | None = None,
) -> Choice | None:
    """The choice of ``field`` with this value, or this label (case-insensitive, also matching string extras).

    With a scope, choices of that scope (and unscoped ones) are searched; active choices win over inactive ones.
    """
    if value is not None:
        return metadata.choice_of(field, value, scope)
    if label is None:
        return None
    choices = metadata.choices(field, scope)
    found: Choice | None = None
    wanted = label.strip().casefold()
    for choice in choices:
        if choice.label.strip().casefold() == wanted or any(
            isinstance(v, str) and v.casefold() == wanted for v in choice.extra.values()
        ):
            if choice.active:
                return choice
            found = found or choice
    return found


class _Lookup(_Args):
    field: str = Field(min_length=1, description="the vendor field whose choices hold the id (metadata field name)")
    scoped: bool = Field(default=False, description="search the record's scope (e.g. its board) only")
    quiet: bool = Field(default=False, description="leave the value empty without a finding when not found")
    keep_id: bool = Field(default=False, description="give the id itself (no finding) when its name is not known")


@register_transform("lookup", args=_Lookup)
def _lookup(value: Any, args: _Lookup, ctx: TransformContext) -> Any:
    """The label (name) of a vendor id, from the connector's metadata (queues, groups, users, picklists)."""
    raw = _str(value, _NO_ARGS, ctx)
    if ctx.metadata is None or args.field not in ctx.metadata.fields:
        if args.keep_id:
            return raw
        if args.quiet:
            return None
        raise TransformFailure(
            "lookup_unavailable", f"{args.field} {raw!r} needs the vendor's metadata to be named; none was loaded"
        )
    choice = find_choice(ctx.metadata, args.field, value=raw, scope=ctx.scope if args.scoped else None)
    if choice is None:
        if args.keep_id:
            return raw
        if args.quiet:
            return None
        raise TransformFailure("lookup_failed", f"{args.field} {raw!r} is not among the vendor's {args.field} values")
    return choice.label
