"""Text helpers every rule shares: word lists, the ticket's words prepared once per evaluation, error codes.

Rules read a ticket's words many times over (14 rules, several word lists each), so the words are prepared once
into a ``TicketText`` (``Tokens`` views: lower case, punctuation as spaces, the set of words; psabridge's own
checklist notes left out) and every word list is prepared once, when the rules file is loaded, into a ``Words``
matcher that tests its single words against the set and its phrases as substrings: no regular expression runs
per word list.

``extract_error_codes`` finds what step 5 of the checklist ("Record error messages and event IDs") asks for:
Windows event IDs, hex codes, numbered errors and Entra ID codes (the mapping's own extractor,
``psabridge.mapping.transforms.extract_error_codes``, which every vendor mapping already runs), plus HTTP status
codes, stack-trace heads (exception types), stop codes and symbolic error constants, and error text the user quoted.
``enrich`` puts them into the canonical ``error_codes`` (ingest applies it before storing); ``error_signature``
turns them into the key under which prior fixes of the same error are looked up.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from psabridge.mapping.transforms import extract_error_codes as _mapping_codes
from psabridge.model import Note, NoteKind, Ticket

__all__ = [
    "OWN_NOTE_PREFIX",
    "TicketText",
    "Tokens",
    "Words",
    "count_affected_users",
    "enrich",
    "error_signature",
    "extract_error_codes",
    "extract_kb_ids",
    "flatten",
    "is_own_note",
]

OWN_NOTE_PREFIX = "psabridge checklist"
"""Every note the rules write starts with these words, so rules never read their own notes back as evidence."""
_PREFIX_LENGTH = len(OWN_NOTE_PREFIX)


_PUNCTUATION = string.punctuation.replace("_", "") + "\t\n\r\x0b\x0c“”„‘’‚–—…«»‹›•·"
_FLAT = str.maketrans({c: " " for c in _PUNCTUATION})
_ASCII = "".join(c for c in _PUNCTUATION if c.isascii()).encode()
_FLAT_ASCII = bytes.maketrans(_ASCII, b" " * len(_ASCII))
_NONE = 1 << 30


def _spaced(lowered: str) -> str:
    """``lowered`` with punctuation as spaces (``_FLAT``); most ticket text is ASCII, which bytes translate faster."""
    if lowered.isascii():
        return lowered.encode().translate(_FLAT_ASCII).decode()
    return lowered.translate(_FLAT)


def flatten(text: str) -> str:
    """``text`` as word lists see it: lower case, punctuation as spaces, single spaces, padded with one each side."""
    return " " + " ".join(_spaced(text.lower()).split()) + " "


class Tokens:
    """A text prepared for word lists: its flattened form (``flatten``) and the set of its words."""

    __slots__ = ("flat", "words")

    def __init__(self, text: str = "") -> None:
        parts = _spaced(text.lower()).split()
        self.flat = " " + " ".join(parts) + " "
        self.words = frozenset(parts)

    def __add__(self, other: Tokens) -> Tokens:
        joined = Tokens.__new__(Tokens)
        joined.flat = self.flat + other.flat[1:]
        joined.words = self.words | other.words
        return joined


class Words:
    """A list of words and phrases, matched as whole words, case and punctuation ignored, prepared once.

    ``unlock`` does not match ``unlocked``; a trailing ``*`` matches any ending (``reproduc*`` matches reproducible,
    reproduced); punctuation counts as a space (``wi-fi`` matches "Wi-Fi" and "wi fi", ``can't`` matches "can’t").
    The first phrase of the list that occurs is the one reported, so order a list from the most telling phrase down.
    In a settings model it is written as a YAML list of strings.
    """

    __slots__ = ("_by_first", "_firsts", "_wilds", "words")

    def __init__(self, words: Iterable[str] = ()) -> None:
        cleaned = (" ".join(w.lower().split()) for w in words)
        self.words: tuple[str, ...] = tuple(dict.fromkeys(w for w in cleaned if flatten(w.rstrip("*")).strip()))
        # Every word and phrase by its first word: (its index, the phrase to find in ``Tokens.flat``, or None for a
        # single word, which the word set alone decides); a search intersects the first words with the text's words
        # once, so a list costs one set operation when none of it occurs (most searches).
        by_first: dict[str, list[tuple[int, str | None]]] = {}
        wilds: list[tuple[int, str]] = []
        for index, word in enumerate(self.words):
            flat = flatten(word.rstrip("*"))
            if word.endswith("*"):
                wilds.append((index, flat[:-1]))
            elif flat.count(" ") == 2:
                by_first.setdefault(flat.strip(), []).append((index, None))
            else:
                by_first.setdefault(flat.split()[0], []).append((index, flat))
        self._by_first = {first: tuple(found) for first, found in by_first.items()}
        self._firsts = frozenset(by_first)
        self._wilds = tuple(wilds)

    def _indexes(self, tokens: Tokens) -> list[int]:
        found = []
        flat = tokens.flat
        for first in self._firsts & tokens.words:
            for index, phrase in self._by_first[first]:
                if phrase is None or phrase in flat:
                    found.append(index)
        for index, prefix in self._wilds:
            if prefix in flat:
                found.append(index)
        return found

    def search(self, text: Tokens | str) -> str | None:
        """The first phrase of the list that occurs in ``text``, or None."""
        tokens = text if isinstance(text, Tokens) else Tokens(text)
        best = _NONE
        hits = self._firsts & tokens.words
        if hits:
            flat = tokens.flat
            for first in hits:
                for index, phrase in self._by_first[first]:
                    if index < best and (phrase is None or phrase in flat):
                        best = index
        for index, prefix in self._wilds:
            if index < best and prefix in tokens.flat:
                best = index
        return self.words[best] if best != _NONE else None

    def find_all(self, text: Tokens | str) -> tuple[str, ...]:
        """Every phrase of the list that occurs in ``text``, in list order."""
        found = self._indexes(text if isinstance(text, Tokens) else Tokens(text))
        return tuple(self.words[i] for i in sorted(found)) if found else ()

    def __bool__(self) -> bool:
        return bool(self.words)

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Words) and other.words == self.words

    def __hash__(self) -> int:
        return hash(self.words)

    def __repr__(self) -> str:
        return f"Words({list(self.words)!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Validated from a list of strings; serialised (and documented in the JSON Schema) as one."""
        from_list = core_schema.no_info_after_validator_function(
            cls, core_schema.list_schema(core_schema.str_schema(min_length=1))
        )
        return core_schema.json_or_python_schema(
            json_schema=from_list,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_list]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda words: list(words.words)),
        )


def is_own_note(note: Note) -> bool:
    """Whether psabridge's rules wrote this note (their notes start with ``OWN_NOTE_PREFIX``)."""
    text = note.text
    if not text[:1].isalpha():
        text = text[:60].lstrip()
    return text[:_PREFIX_LENGTH].lower() == OWN_NOTE_PREFIX


def _latest(notes: Iterable[Note]) -> Note | None:
    """The newest note (by creation time; when a time is missing, the later one in stored order)."""
    best: Note | None = None
    for note in notes:
        if best is None or best.created_at is None or note.created_at is None or note.created_at >= best.created_at:
            best = note
    return best


class TicketText:
    """A ticket's words, prepared once per evaluation and shared by every rule; each view is built on first use.

    Attributes:
        ticket: the ticket.
        human_notes: the notes people wrote (psabridge's own checklist notes left out), as stored.
        raw: summary, description, those notes and the time entries' notes, in their original case (for codes,
            commands and quotes, where case matters).
        resolution: the latest resolution note as written, or "" when there is none.
        codes: the ticket's ``error_codes`` (ingest has added what its words hold: ``enrich``).
    """

    __slots__ = (
        "_affected",
        "_counted",
        "_kb_ids",
        "_labels",
        "_notes",
        "_notes_raw",
        "_resolution_words",
        "_user",
        "_words",
        "codes",
        "human_notes",
        "raw",
        "resolution",
        "ticket",
    )

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        human = tuple(n for n in ticket.notes if n.text and not is_own_note(n))
        self.human_notes = human
        pieces = [n.text for n in human]
        pieces.extend(e.note for e in ticket.time_entries if e.note)
        self._notes_raw = "\n".join(pieces)
        self.raw = f"{ticket.summary}\n{ticket.description}\n{self._notes_raw}"
        latest = _latest(n for n in human if n.kind is NoteKind.RESOLUTION)
        self.resolution = latest.text.strip() if latest is not None else ""
        self.codes = ticket.error_codes
        self._words: Tokens | None = None
        self._user: Tokens | None = None
        self._notes: Tokens | None = None
        self._resolution_words: Tokens | None = None
        self._kb_ids: tuple[str, ...] | None = None
        self._labels: Tokens | None = None
        self._affected: int | None = None
        self._counted = False

    @property
    def words(self) -> Tokens:
        """Everything: summary, description, the notes people wrote and the time entries' notes."""
        if self._words is None:
            self._words = self.user + self.notes
        return self._words

    @property
    def user(self) -> Tokens:
        """Summary and description: the requester's own words."""
        if self._user is None:
            self._user = Tokens(f"{self.ticket.summary}\n{self.ticket.description}")
        return self._user

    @property
    def notes(self) -> Tokens:
        """The notes people wrote and the time entries' notes."""
        if self._notes is None:
            self._notes = Tokens(self._notes_raw)
        return self._notes

    @property
    def resolution_words(self) -> Tokens:
        """The latest resolution note."""
        if self._resolution_words is None:
            self._resolution_words = Tokens(self.resolution)
        return self._resolution_words

    @property
    def labels(self) -> Tokens:
        """The ticket's category and subcategory."""
        if self._labels is None:
            self._labels = Tokens(f"{self.ticket.category or ''} {self.ticket.subcategory or ''}")
        return self._labels

    @property
    def kb_ids(self) -> tuple[str, ...]:
        """The KB article ids the latest resolution note cites (``extract_kb_ids``)."""
        if self._kb_ids is None:
            # Every id the expression finds has "kb" in it (in any case): most notes have none, and skip the scan.
            found = self.resolution and "kb" in self.resolution.lower()
            self._kb_ids = extract_kb_ids(self.resolution) if found else ()
        return self._kb_ids

    @property
    def affected(self) -> int | None:
        """The largest count of affected people the words state (``count_affected_users``), or None."""
        if not self._counted:
            self._affected = _count(self.words.flat)
            self._counted = True
        return self._affected

    def notes_since(self, moment: datetime | None) -> tuple[Note, ...]:
        """The notes people wrote at or after ``moment`` (all of them when it is None, or a note has no time)."""
        if moment is None:
            return self.human_notes
        return tuple(n for n in self.human_notes if n.created_at is None or n.created_at >= moment)


# --- error codes ------------------------------------------------------------------------------------------------------

_HTTP = re.compile(
    r"\bHTTP(?:/\d(?:\.\d)?)?\s*(?:status\s*(?:code)?\s*)?[:#]?\s*(?P<a>[1-5]\d\d)\b"
    r"|\b(?:status|response)\s*(?:code)?\s*[:=]?\s*(?P<b>[45]\d\d)\b"
    r"|\b(?P<c>[45]\d\d)\s+(?:Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Request Timeout|"
    r"Conflict|Gone|Too Many Requests|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)\b",
    re.IGNORECASE,
)
_EXCEPTION = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*(?:Exception|Error))(?!\w)")
_STOP = re.compile(r"\b(?:stop code|bug ?check)\s*[:#]?\s*([A-Z][A-Z0-9_]{5,})\b", re.IGNORECASE)
_SYMBOL = re.compile(r"\b(?!HKEY_)[A-Z][A-Z0-9]*(?:_[A-Z0-9]+){2,}\b")
_QUOTED = re.compile(
    r"(?:\bsays?|\bsaid|\berror(?:\s+message)?|\bmessage|\breads|\bshows|\bprompt|\bpops up(?:\s+with)?)"
    r"\W{0,12}?[\"“'‘]([^\"“”'‘’\n]{6,200})[\"”'’]",
    re.IGNORECASE,
)
_KB = re.compile(r"\bKB\s*[-#:]?\s*(\d{3,8})\b", re.IGNORECASE)
_AFFECTED = re.compile(  # on flattened text: "12 users", "40 of us", "1 user(s)" -> " 1 user s "
    r" (\d{1,5}) (?:other )?(?:users?|people|persons?|staff|employees|colleagues|of us|others|seats|machines|pcs|"
    r"computers|workstations)(?= )"
)
_HTTP_HINTS = (
    "http",
    "status",
    "response",
    "bad request",
    "unauthorized",
    "forbidden",
    "not found",
    "not allowed",
    "timeout",
    "conflict",
    "gone",
    "too many",
    "server error",
    "bad gateway",
    "unavailable",
)
_SIGNATURE_CODES = 8


def _codes_in(texts: Iterable[str]) -> tuple[str, ...]:
    texts = [t for t in texts if t]
    found: dict[str, None] = dict.fromkeys(_mapping_codes(texts))
    for text in texts:
        lowered = text.lower()
        # Each expression runs only where a cheap substring test says it can match: most texts hold no HTTP status,
        # stop code or stack trace, and the expressions are the costly part of ingest's enrichment.
        if any(hint in lowered for hint in _HTTP_HINTS):
            for match in _HTTP.finditer(text):
                found.setdefault(f"HTTP {match.group('a') or match.group('b') or match.group('c')}", None)
        stops: set[str] = set()
        if "stop code" in lowered or "bug" in lowered:
            for match in _STOP.finditer(text):
                stops.add(match.group(1).upper())
                found.setdefault(f"Stop code {match.group(1).upper()}", None)
        if "_" in text:
            for match in _SYMBOL.finditer(text):
                if match.group(0) not in stops:
                    found.setdefault(match.group(0), None)
        if "Exception" in text or "Error" in text:
            for match in _EXCEPTION.finditer(text):
                found.setdefault(match.group(1), None)
        if '"' in text or "“" in text or "'" in text or "‘" in text:
            for match in _QUOTED.finditer(text):
                quoted = " ".join(match.group(1).split()).strip(" .")
                if quoted:
                    found.setdefault(f'"{quoted}"', None)
    return tuple(found)


def _merge(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def extract_error_codes(ticket: Ticket) -> tuple[str, ...]:
    """Every error code in the ticket's summary, description and the notes people wrote, in order, without repeats.

    ``Event ID 4625``, ``0x80070005``, ``Error 809`` and ``AADSTS50076`` (as the vendor mappings extract them), then
    ``HTTP 503``, ``Stop code DRIVER_POWER_STATE_FAILURE``, symbolic constants such as
    ``DNS_PROBE_FINISHED_NO_INTERNET``, exception types heading a stack trace (``System.IO.FileLoadException``) and
    error text the user quoted after "it says" / "error" / "message" (kept in double quotes: ``"Disconnected"``).
    psabridge's own checklist notes are not read.
    """
    texts = [ticket.summary, ticket.description]
    texts.extend(n.text for n in ticket.notes if n.text and not is_own_note(n))
    return _codes_in(texts)


def enrich(ticket: Ticket) -> Ticket:
    """The ticket with every code ``extract_error_codes`` finds added to its ``error_codes`` (same object if none)."""
    merged = _merge(ticket.error_codes, extract_error_codes(ticket))
    if merged == ticket.error_codes:
        return ticket
    return ticket.model_copy(update={"error_codes": merged})


def error_signature(codes: Ticket | Iterable[str]) -> str | None:
    """The key prior fixes of the same error are found under, or None when the ticket records no error.

    The specific codes (everything but quoted text), sorted and joined with `` + `` (at most eight), so two tickets
    showing the same errors share a signature whatever order they were written in; without specific codes, the
    first quoted error text, lower-cased (``text:"disconnected"``).
    """
    if isinstance(codes, Ticket):
        codes = _merge(codes.error_codes, extract_error_codes(codes))
    codes = tuple(codes)
    specific = sorted({c for c in codes if not c.startswith('"')})
    if specific:
        return " + ".join(specific[:_SIGNATURE_CODES])
    quoted = [c for c in codes if c.startswith('"')]
    return f"text:{' '.join(quoted[0].lower().split())}" if quoted else None


def extract_kb_ids(text: str) -> tuple[str, ...]:
    """Knowledge-base article ids in ``text`` (``KB 4567``, ``kb#4567``, ``KB-4567`` -> ``KB 4567``), in order."""
    return tuple(dict.fromkeys(f"KB {m.group(1)}" for m in _KB.finditer(text)))


def count_affected_users(text: Tokens | str) -> int | None:
    """The largest count of affected people the text states ("12 users", "40 of us", "3 others"), or None."""
    return _count(text.flat if isinstance(text, Tokens) else flatten(text))


def _count(flat: str) -> int | None:
    counts = [int(m.group(1)) for m in _AFFECTED.finditer(flat)]
    return max(counts) if counts else None
