"""Structured logging: JSON lines for a service, readable lines on a terminal, secrets masked wherever they appear."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

__all__ = ["MASK", "configure_logging", "get_logger", "mask_secrets", "sanitize_url"]

MASK = "***"

# Keys whose values are secret wherever they appear: headers, query parameters, config, event fields.
_SECRET_KEY = re.compile(
    r"(authorization|password|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|public[_-]?key|signing[_-]?key|"
    r"client[_-]?secret|clientid|client[_-]?id|routing[_-]?key|x-content-signature|x-hook-signature|cookie|"
    r"credential|x-sn-apikey|^key$)",
    re.IGNORECASE,
)
# Secrets that hide inside free text: auth headers, user:password@ URLs (any scheme: a database or broker URL too),
# key=value pairs, and secret headers a vendor echoes back in an error body ("Secret: ...", "ApiIntegrationCode: ..."
# as Autotask takes them, "clientId" as ConnectWise does; VENDOR-APIS.md).
_TEXT_PATTERNS = (
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{6,}"), r"\1 " + MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/:@]*:[^\s/@]+@"), r"\1" + MASK + "@"),
    (
        re.compile(
            r"(?i)\b(secret|apiintegrationcode|clientid|client_secret|x-api-key|x-sn-apikey|x-webhook-secret|"
            r"webhook-secret|access_token|refresh_token|password)([\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}\]]+"
        ),
        r"\1\2" + MASK,
    ),
    (
        re.compile(r"(?i)\b(password|secret|token|api_key|apikey|signing_key|private_key)=([^\s&\"']+)"),
        r"\1=" + MASK,
    ),
)


def is_secret_key(key: str) -> bool:
    """Whether a field, header or parameter name holds a secret."""
    return bool(_SECRET_KEY.search(key))


def mask_text(text: str) -> str:
    """Mask secrets embedded in free text (auth headers, user:password@ URLs, key=value pairs)."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def sanitize_url(url: str) -> str:
    """Mask credentials in a URL's userinfo and in secret query parameters before it is logged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_key(k) else v) for k, v in pairs], safe='[]/:,=<>" ')
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(value: Any, key: str | None = None) -> Any:
    """Return ``value`` with every secret masked: by key name in mappings, by pattern in strings."""
    if key is not None and is_secret_key(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_secrets(v) for v in value)
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            return sanitize_url(value)
        return mask_text(value)
    if type(value).__name__ in ("SecretStr", "SecretBytes"):
        return MASK
    return value


def _mask_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = mask_secrets(event_dict[key], key if key != "event" else None)
    return event_dict


class _CurrentStderrLogger:
    """Writes to whatever ``sys.stderr`` is at call time (a captured or replaced stream stays usable)."""

    def __init__(self, *_args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        """Write one rendered line."""
        stream = sys.stderr
        try:
            stream.write(message + "\n")
            stream.flush()
        except ValueError:  # the stream was closed (e.g. a finished test runner); logging must never crash work
            pass

    log = debug = info = warning = warn = error = critical = exception = fatal = failure = err = msg


class _CurrentStderrHandler(logging.Handler):
    """A stdlib handler that writes each formatted record to whatever ``sys.stderr`` is at call time."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one rendered line (a line per record: tracebacks are inside it)."""
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never crash work
            self.handleError(record)
            return
        _CurrentStderrLogger().msg(line)


def _logger_name(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict.setdefault("logger", record.name)
    return event_dict


def configure_logging(level: str = "info", fmt: Literal["auto", "json", "console"] = "auto") -> None:
    """Set up structlog, and stdlib logging underneath it, for this process (again: replaces the set-up).

    Libraries' stdlib records (Dramatiq's workers, uvicorn, Alembic) go through the same chain as ours: one JSON
    line each with its traceback as the ``exception`` field (or one readable line on a terminal), secrets masked.
    They are shown from ``warning`` up, or from ``level`` when that is lower than ``info`` (``-v -v``/debug).
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _mask_processor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_CurrentStderrLogger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _mask_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if type(h) in (_CurrentStderrHandler, logging.StreamHandler)]:
        root.removeHandler(old)  # ours from an earlier call, or a plain-text one (basicConfig, a library's)
    root.addHandler(handler)
    root.setLevel(numeric if numeric < logging.INFO else max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq"):
        library = logging.getLogger(name)
        library.handlers.clear()  # uvicorn's default config gives its loggers plain-text handlers of their own
        library.propagate = True


def get_logger(name: str | None = None, **bound: Any) -> Any:
    """A structlog logger, optionally with fields bound."""
    logger = structlog.get_logger(name)
    return logger.bind(**bound) if bound else logger
