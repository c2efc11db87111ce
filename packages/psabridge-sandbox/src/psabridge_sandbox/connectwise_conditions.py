"""ConnectWise PSA query syntax for the simulator: ``conditions`` (parsed into a predicate) and ``orderBy``.

Grammar, as ConnectWise documents it for every list endpoint (VENDOR-APIS.md 1.3; CWREST Params typedef; the
ConnectWise developer guide's "Conditions" section, mirrored in pyconnectwise docs)::

    conditions := or ; or := and ("or" and)* ; and := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | path op value
    op         := = != < <= > >= | contains | like | in | not contains | not like | not in
    value      := "string" | [2016-08-20T18:04:26Z] | 12 | 1.5 | true | false | null | (v, v, ...)   (lists for in)

Keywords and field paths are case-insensitive (``Board/ID`` works as ``board/id``), as is string comparison
(SQL Server's default collation). Strings must be double-quoted and dates bracketed: a quoted string compared with a
date field is refused, which is how a client that forgets the brackets learns it (the connector must bracket).
``like`` takes ``%`` and ``_`` wildcards. ``orderBy`` is ``path [asc|desc], ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ConditionError", "Getter", "Predicate", "compile_conditions", "parse_datetime", "parse_order_by"]


class ConditionError(ValueError):
    """A ``conditions`` or ``orderBy`` value ConnectWise would refuse (HTTP 400)."""


Getter = Callable[[Any, tuple[str, ...]], Any]
"""(record, lower-cased path parts) -> the field's value (datetimes for date fields, None when absent)."""

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<date>\[[^\]]*\])
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
      | (?P<word>[A-Za-z_][\w/.]*)
    )""",
    re.VERBOSE,
)
_WORD_OPS = ("contains", "like", "in")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def parse_datetime(text: str) -> datetime:
    """A ConnectWise date literal or field value (``2016-08-20T18:04:26Z``, offsets allowed) as aware UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ConditionError(f"unexpected character {text[position:].lstrip()[:1]!r} at position {position}")
        kind = match.lastgroup or ""
        found.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return found


@dataclass(frozen=True)
class _Literal:
    kind: str  # string, date, number, bool, null, list
    value: Any


class _Parser:
    def __init__(self, text: str, getter: Getter) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.get = getter

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ConditionError("conditions end too early")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise ConditionError(f"expected {text!r} at position {token.position}, found {token.text!r}")

    def parse(self) -> Predicate:
        predicate = self.or_()
        token = self.peek()
        if token is not None:
            raise ConditionError(f"unexpected {token.text!r} at position {token.position}")
        return predicate

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while self.word("or"):
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda record: any(part(record) for part in parts)

    def and_(self) -> Predicate:
        parts = [self.unary()]
        while self.word("and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda record: all(part(record) for part in parts)

    def unary(self) -> Predicate:
        if self.word("not"):
            self.take()
            inner = self.unary()
            return lambda record: not inner(record)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.or_()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        token = self.take()
        if token.kind != "word" or token.text.lower() in ("and", "or", "not"):
            raise ConditionError(f"expected a field name at position {token.position}, found {token.text!r}")
        path = tuple(part.lower() for part in token.text.split("/"))
        negate = False
        if self.word("not"):
            self.take()
            negate = True
            if not self.word(*_WORD_OPS):
                raise ConditionError(f"expected contains, like or in after 'not' (field {token.text})")
        op_token = self.take()
        op = op_token.text.lower()
        if op_token.kind == "op" and not negate:
            pass
        elif op_token.kind != "word" or op not in _WORD_OPS:
            raise ConditionError(f"expected an operator after {token.text!r} at position {op_token.position}")
        value = self.value(allow_list=op == "in")
        test = _comparison(self.get, path, token.text, op, value)
        return (lambda record: not test(record)) if negate else test

    def value(self, *, allow_list: bool) -> _Literal:
        token = self.take()
        if token.kind == "string":
            return _Literal("string", re.sub(r"\\(.)", r"\1", token.text[1:-1]))
        if token.kind == "date":
            try:
                return _Literal("date", parse_datetime(token.text[1:-1]))
            except ValueError:
                raise ConditionError(f"{token.text} is not a date (use [2016-08-20T18:04:26Z])") from None
        if token.kind == "number":
            return _Literal("number", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return _Literal("bool", token.text.lower() == "true")
        if token.kind == "word" and token.text.lower() == "null":
            return _Literal("null", None)
        if token.text == "(" and allow_list:
            items = [self.value(allow_list=False)]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                items.append(self.value(allow_list=False))
            self.expect(")")
            return _Literal("list", items)
        raise ConditionError(
            f"expected a value at position {token.position}, found {token.text!r} "
            "(strings go in double quotes, dates in [brackets])"
        )


def _normal(value: Any, literal: _Literal, field: str) -> tuple[Any, Any]:
    """The field value and the literal made comparable, or ConditionError for a type mismatch."""
    if literal.kind == "date":
        if isinstance(value, str):
            try:
                value = parse_datetime(value)
            except ValueError:
                raise ConditionError(f"{field} is not a date field") from None
        elif not isinstance(value, datetime):
            raise ConditionError(f"{field} is not a date field")
        return value, literal.value
    if isinstance(value, datetime):
        raise ConditionError(f"{field} is a date: write the value in brackets, e.g. [2016-08-20T18:04:26Z]")
    if literal.kind == "string":
        return str(value).casefold(), str(literal.value).casefold()
    if literal.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConditionError(f"{field} cannot be compared with a number") from None
        return value, literal.value
    if literal.kind == "bool":
        if not isinstance(value, bool):
            raise ConditionError(f"{field} is not a true/false field")
        return value, literal.value
    raise ConditionError(f"{field}: cannot compare with {literal.kind}")


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern.casefold()]
    return re.compile("".join(parts), re.DOTALL)


def _comparison(get: Getter, path: tuple[str, ...], field: str, op: str, literal: _Literal) -> Predicate:
    if literal.kind == "null":
        if op == "=":
            return lambda record: get(record, path) is None
        if op == "!=":
            return lambda record: get(record, path) is not None
        raise ConditionError(f"{field}: null works only with = and !=")
    if op == "in":
        if literal.kind != "list":
            raise ConditionError(f"{field} in: expected a list such as (1, 2)")
        items: Sequence[_Literal] = literal.value
        kinds = {item.kind for item in items}
        if kinds in ({"number"}, {"string"}):  # one set lookup per record, not one comparison per listed value
            return _within_set(get, path, field, items)

        def within(record: Any) -> bool:
            value = get(record, path)
            if value is None:
                return False
            return any(a == b for a, b in (_normal(value, item, field) for item in items))

        return within
    if op in ("contains", "like"):
        if literal.kind != "string":
            raise ConditionError(f"{field} {op}: expected a quoted string")
        needle = str(literal.value).casefold()
        matcher = _like(needle) if op == "like" else None

        def text_match(record: Any) -> bool:
            value = get(record, path)
            if value is None:
                return False
            text = str(value).casefold()
            return matcher.fullmatch(text) is not None if matcher is not None else needle in text

        return text_match
    compare: Callable[[Any, Any], bool] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]

    def test(record: Any) -> bool:
        value = get(record, path)
        if value is None:
            return op == "!="
        a, b = _normal(value, literal, field)
        return compare(a, b)

    return test


def _within_set(get: Getter, path: tuple[str, ...], field: str, items: Sequence[_Literal]) -> Predicate:
    """``field in (...)`` over numbers only or strings only, normalised once as ``_normal`` would."""
    first = items[0]
    wanted = {_normal(item.value, item, field)[1] for item in items}

    def within(record: Any) -> bool:
        value = get(record, path)
        return value is not None and _normal(value, first, field)[0] in wanted

    return within


def compile_conditions(text: str | None, getter: Getter) -> Predicate | None:
    """The predicate of a ``conditions`` value (None when empty). Raises ConditionError for bad syntax."""
    if text is None or not text.strip():
        return None
    return _Parser(text, getter).parse()


def parse_order_by(text: str | None) -> list[tuple[tuple[str, ...], bool]]:
    """``orderBy`` as [(lower-cased path parts, descending)], e.g. ``_info/lastUpdated asc, id desc``."""
    keys: list[tuple[tuple[str, ...], bool]] = []
    for clause in (text or "").split(","):
        words = clause.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ConditionError(f"orderBy: cannot read {clause.strip()!r} (write: field asc|desc)")
        if not re.fullmatch(r"[A-Za-z_][\w/.]*", words[0]):
            raise ConditionError(f"orderBy: {words[0]!r} is not a field")
        keys.append((tuple(p.lower() for p in words[0].split("/")), len(words) == 2 and words[1].lower() == "desc"))
    return keys
