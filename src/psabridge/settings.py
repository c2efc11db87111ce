"""Typed settings: one tree read from a YAML file plus PSABRIDGE_* environment variables, the environment winning.

Precedence, highest first:

1. ``PSABRIDGE_*`` environment variables. Nested fields use ``__``; list items take an index or, for connections,
   the connection name: ``PSABRIDGE_BROKER``, ``PSABRIDGE_LOG__LEVEL``, ``PSABRIDGE_CONNECTIONS__0__POLL_EVERY``,
   ``PSABRIDGE_CONNECTIONS__ACME_SNOW__BASE_URL``. A value starting with ``[`` or ``{`` is read as JSON.
2. The YAML file: ``--config FILE``, else ``$PSABRIDGE_CONFIG``, else ``config/psabridge.yaml``.
3. Defaults in the models below.

Secrets never sit in the YAML: a credential is written ``<name>_env: VARIABLE`` or ``<name>_file: path``, and is
held as a ``SecretStr`` that is never printed or logged. Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from psabridge.default_mappings import BUILTIN, UnknownMappingError, resolve_mapping
from psabridge.errors import ConfigError
from psabridge.log import mask_text, sanitize_url
from psabridge.model import System
from psabridge.yamlsource import LocatedYaml, Problem, YamlError, format_loc, load_yaml, problems_from_validation

__all__ = [
    "DEFAULT_CONFIG",
    "ConnectionSettings",
    "Credentials",
    "LinkSettings",
    "NotifierSettings",
    "RateBudget",
    "Settings",
    "SettingsError",
    "TenantSettings",
    "Timeouts",
    "load_settings",
    "parse_duration",
]

ENV_PREFIX = "PSABRIDGE_"
DEFAULT_CONFIG = Path("config/psabridge.yaml")
# A chat incoming webhook's URL is its credential (webhook_url), never written in the file.
SECRET_WORDS = (
    *("password", "secret", "private_key", "public_key", "token", "api_key", "apikey", "client_id", "key"),
    "webhook_url",
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> timedelta:
    """``90``, ``"30s"``, ``"2m"``, ``"1h"``, ``"1d"``, ``"250ms"`` -> timedelta (a bare number is seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (write e.g. 30s, 2m, 1h)")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (write e.g. 30s, 2m, 1h)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_backfill_since(value: Any) -> timedelta | None:
    """``all`` -> None (no bound); else a duration as ``parse_duration`` reads it, which must be positive."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    found = parse_duration(value)
    if found <= timedelta(0):
        raise ValueError(f"{value!r} is not a positive duration (write e.g. 90d, or all)")
    return found


BackfillSince = Annotated[timedelta | None, BeforeValidator(parse_backfill_since)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RateBudget(_Section):
    """How much of a vendor's API this connection may use.

    ``requests`` per ``per`` is the ceiling for our own traffic (in the vendor's credits, where it charges more than
    one per request); ``concurrency`` caps requests in flight per endpoint. Omitted values take the connector's
    vendor default. The vendor's own limits (per-endpoint sub-limits, account-wide windows) apply as well.
    """

    requests: int | None = Field(default=None, gt=0, description="credits per window for our own traffic")
    per: Duration = timedelta(hours=1)
    concurrency: int | None = Field(default=None, gt=0, description="requests in flight per endpoint")
    vendor_limits: bool = Field(
        default=True,
        description="false: ignore the vendor's published limits and defaults, keeping only what is configured here "
        "(for a sandbox started with --limits off, so a benchmark measures psabridge's own cost)",
    )


class Timeouts(_Section):
    """HTTP timeouts in seconds."""

    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=30.0, gt=0)


class Credentials:
    """Resolved credentials of one connection. Values are secret: repr and str never show them."""

    def __init__(self, values: Mapping[str, SecretStr]) -> None:
        self._values = dict(values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"Credentials({sorted(self._values)})"

    def names(self) -> list[str]:
        """The credential names that are set."""
        return sorted(self._values)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The plain value of a credential, or ``default``."""
        value = self._values.get(name)
        return value.get_secret_value() if value is not None else default

    def require(self, name: str, *, connection: str) -> str:
        """The plain value of a credential that must be set.

        Raises:
            ConfigError: it is not configured.
        """
        value = self.get(name)
        if not value:
            raise ConfigError(
                f"credential {name!r} is missing: set credentials.{name}_env or credentials.{name}_file",
                connection=connection,
            )
        return value


class ConnectionSettings(_Section):
    """One vendor system psabridge talks to."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="unique name, used in keys, logs and links")
    system: System
    base_url: str = Field(
        description="the vendor API root, e.g. https://acme.service-now.com (ConnectWise: the site root, whose "
        "codebase is looked up, or a pinned root such as https://api-na.myconnectwise.net/v4_6_release/apis/3.0)"
    )
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="plain values, or <name>_env: VARIABLE / <name>_file: path for secrets",
    )
    tenant: str | None = Field(default=None, description="the MSP client the whole connection belongs to")
    tenants: dict[str, str] = Field(
        default_factory=dict, description="vendor company identifier -> tenant key, for connections with many clients"
    )
    mapping: Path | None = Field(
        default=None,
        description="mapping file, or builtin:<system> for the one psabridge ships; "
        "default: mappings/<system>.yaml beside the settings file if there is one, else builtin:<system>",
    )
    poll_every: Duration = timedelta(minutes=2)
    overlap: Duration | None = Field(default=None, description="re-read window behind the watermark")
    backfill_since: BackfillSince = Field(
        default=timedelta(days=90),
        description="how far back the first backfill (and reconcile --full) stores closed tickets: a duration "
        "(90d, 2y is 730d) or all; open tickets are stored whatever their age, and reconcile --since reaches further",
    )
    page_size: int | None = Field(default=None, gt=0)
    rate_budget: RateBudget = Field(default_factory=RateBudget)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    options: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="vendor-specific settings, validated against the connector's options model (config schema)",
    )
    enabled: bool = True

    _credentials: Credentials = PrivateAttr(default_factory=lambda: Credentials({}))

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @property
    def secrets(self) -> Credentials:
        """The resolved credentials (secret values)."""
        return self._credentials

    def backfill_reach(self, now: datetime) -> datetime | None:
        """The oldest update time of a closed ticket a backfill still stores (None: every ticket)."""
        return None if self.backfill_since is None else now - self.backfill_since


class TenantSettings(_Section):
    """One MSP client."""

    name: str
    contract_tier: str | None = None
    calendar: str | None = None
    timezone: str = "UTC"
    vip: list[str] = Field(default_factory=list, description="e-mail addresses of VIP users")


class LinkEnd(_Section):
    """One side of a mirror link."""

    connection: str
    where: dict[str, JsonValue] = Field(default_factory=dict, description="canonical field -> value(s) to match")
    queue: str | None = None
    tenant: str | None = Field(
        default=None,
        description="from: only this client's tickets (required from a connection of several clients); to: the "
        "client whose company new mirrors are created under (required into such a connection); never another "
        "client than the source's (psabridge/tenancy.py)",
    )
    fields: dict[str, JsonValue] = Field(default_factory=dict, description="canonical fields set on a new mirror")


Owner = Literal["from", "to", "both"]
LINKABLE_FIELDS = frozenset(
    {
        "status",
        "priority",
        "impact",
        "urgency",
        "summary",
        "description",
        "notes",
        "time_entries",
        "queue",
        "assignee",
        "category",
        "subcategory",
        "kind",
    }
)


class LinkSettings(_Section):
    """A mirror (eBonding) rule: tickets of one connection matching ``from.where`` are mirrored into ``to``."""

    name: str = ""
    from_: LinkEnd = Field(alias="from")
    to: LinkEnd
    own: dict[str, Owner] = Field(default_factory=dict, description="canonical field -> side that wins")
    enabled: bool = True

    @field_validator("own")
    @classmethod
    def _own(cls, value: dict[str, Owner]) -> dict[str, Owner]:
        unknown = sorted(set(value) - LINKABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot own {', '.join(unknown)}; fields: {', '.join(sorted(LINKABLE_FIELDS))}")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> LinkSettings:
        if not self.name:
            self.name = f"{self.from_.connection}->{self.to.connection}"
        return self


class NotifierSettings(_Section):
    """A paging service or chat channel that rules can send to."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_#-]*$")
    kind: Literal["pagerduty", "opsgenie", "slack", "teams"]
    base_url: str = Field(
        default="",
        description="the API root (default: the vendor's: https://events.pagerduty.com, https://api.opsgenie.com); "
        "for slack and teams the webhook's origin, or the whole webhook URL when it is no secret (a sandbox)",
    )
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="pagerduty: routing_key; opsgenie: api_key; slack/teams: webhook_url (the URL is the secret); "
        "as <name>_env: VARIABLE or <name>_file: path",
    )
    rate_budget: RateBudget = Field(default_factory=RateBudget)
    timeouts: Timeouts = Field(default_factory=lambda: Timeouts(connect=5.0, read=10.0))

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    _credentials: Credentials = PrivateAttr(default_factory=lambda: Credentials({}))

    @property
    def secrets(self) -> Credentials:
        """The resolved credentials (secret values)."""
        return self._credentials


class LogSettings(_Section):
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable on a terminal, JSON lines otherwise"
    )


class WebhookServerSettings(_Section):
    """The webhook receiver of `psabridge serve`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(default=None, description="the URL vendors reach the receiver at")


class Settings(BaseSettings):
    """The whole psabridge configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    database: str = Field(default="sqlite:///../var/psabridge.db", description="sqlite:///path or postgresql://...")
    broker: str = Field(default="embedded", description="embedded, redis://host:6379/0 or amqp://user:pw@host:5672/")
    namespace: str = Field(
        default="psabridge",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
        description="prefix of psabridge's keys in Redis (queues, locks, rate budgets): deployments sharing one Redis "
        "need different namespaces",
    )
    log: LogSettings = Field(default_factory=LogSettings)
    webhooks: WebhookServerSettings = Field(default_factory=WebhookServerSettings)
    tenants: dict[str, TenantSettings] = Field(default_factory=dict)
    connections: list[ConnectionSettings] = Field(default_factory=list)
    links: list[LinkSettings] = Field(default_factory=list)
    notifiers: list[NotifierSettings] = Field(default_factory=list)
    rules: Path | None = Field(default=None, description="checklist, SLA and escalation rules file")

    _source: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the data load_settings() merged from YAML and environment (so errors can be located)."""
        return (init_settings,)

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite:", "postgresql+psycopg://")):
            shown = sanitize_url(value)  # never echo its password
            raise ValueError(f"{shown!r} is not a database URL psabridge supports (sqlite:///... or postgresql://...)")
        return value

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value != "embedded" and not re.match(r"^(redis|rediss|amqp|amqps)://", value):
            shown = sanitize_url(value)  # never echo its password
            raise ValueError(f"{shown!r} is not a broker psabridge supports (embedded, redis://... or amqp://...)")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [c.name for c in self.connections]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"connection names must be unique; repeated: {', '.join(dupes)}")
        for link in self.links:
            for end in (link.from_, link.to):
                if end.connection not in names:
                    raise ValueError(
                        f"link {link.name!r} names connection {end.connection!r}; configured: {', '.join(names)}"
                    )
        return self

    @property
    def source(self) -> Path | None:
        """The YAML file these settings came from."""
        return self._source

    def connection(self, name: str) -> ConnectionSettings:
        """The connection called ``name``.

        Raises:
            ConfigError: there is none.
        """
        for conn in self.connections:
            if conn.name == name:
                return conn
        raise ConfigError(f"no connection named {name!r}; configured: {', '.join(c.name for c in self.connections)}")

    def safe_dump(self) -> dict[str, Any]:
        """The settings as JSON-safe data, secrets left out.

        Credential references are names, not values; a password in the database or broker URL is masked.
        """
        data = self.model_dump(mode="json", by_alias=True)
        data["database"], data["broker"] = mask_text(self.database), mask_text(self.broker)
        return data


class SettingsError(ConfigError):
    """The configuration has problems; ``problems`` lists each with file, line and field path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


# --- loading ----------------------------------------------------------------------------------------------------------


def config_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Which config file to read: the explicit path, else $PSABRIDGE_CONFIG, else config/psabridge.yaml."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("PSABRIDGE_CONFIG"):
        return Path(env["PSABRIDGE_CONFIG"])
    return DEFAULT_CONFIG


def load_settings(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None, secrets: bool = True
) -> Settings:
    """Read, merge and validate the configuration, resolving secrets.

    Args:
        path: the settings file (None: $PSABRIDGE_CONFIG, else config/psabridge.yaml).
        env: the environment (None: this process's).
        secrets: False: a secret that cannot be read is no problem (it is left out), for commands that work
            offline (``mapping preview --input``); an inline secret is still refused.

    Raises:
        SettingsError: with every problem found, each naming file, line and field path.
    """
    env = dict(os.environ if env is None else env)
    file = config_path(path, env)
    try:
        located = load_yaml(file)
    except YamlError as exc:
        raise SettingsError(exc.problems) from exc
    if not isinstance(located.data, dict):
        raise SettingsError([Problem(located.file, 1, "", "the file must hold a mapping of settings")])
    data = json.loads(json.dumps(located.data, default=str))
    origins = _overlay_env(data, env)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise SettingsError(
            problems_from_validation(exc, located, fields_at=_fields_at(data), origins=origins)
        ) from exc
    settings._source = file.resolve()
    problems = _check_options(settings, located, origins)
    problems += _check_tenancy(settings, located, origins)
    problems += _resolve(settings, located, env, origins, secrets=secrets)
    if problems:
        raise SettingsError(problems)
    return settings


def _overlay_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str | int, ...], str]:
    """Apply PSABRIDGE_* variables onto the YAML data; return which paths came from which variable."""
    origins: dict[tuple[str | int, ...], str] = {}
    top = set(Settings.model_fields) | {"from"}
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        if parts[0] not in top or parts[0] == "config":
            continue  # PSABRIDGE_CONFIG and variables of other tools (tests, CI) are not settings
        raw = env[var]
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        loc = _set_path(data, parts, value)
        origins[loc] = f"environment variable {var}"
    return origins


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> tuple[str | int, ...]:
    node: Any = data
    loc: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part)
            if index == len(node):
                node.append({})
            loc.append(index)
            if last:
                node[index] = value
            else:
                if not isinstance(node[index], dict | list):
                    node[index] = {}
                node = node[index]
            continue
        key = part
        loc.append(key)
        if last:
            node[key] = value
        else:
            if key not in node or not isinstance(node[key], dict | list):
                node[key] = [] if key in ("connections", "links", "notifiers") else {}
            node = node[key]
    return tuple(loc)


def _list_index(items: list[Any], part: str) -> int:
    if part.isdigit():
        return int(part)
    wanted = part.replace("_", "-")
    for index, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("name", "")).replace("_", "-") == wanted:
            return index
    return len(items)


def _fields_at(data: Any) -> Any:
    def fields(loc: tuple[str | int, ...]) -> list[str]:
        model: Any = Settings
        for part in loc:
            if isinstance(part, int):
                continue
            field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
            if field is None:
                return []
            annotation = field.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if hasattr(candidate, "model_fields"):
                    model = candidate
                    break
            else:
                return []
        return [f.alias or name for name, f in model.model_fields.items()] if hasattr(model, "model_fields") else []

    return fields


def _check_options(
    settings: Settings, located: LocatedYaml, origins: Mapping[tuple[str | int, ...], str]
) -> list[Problem]:
    """Validate each connection's ``options`` against its connector's options model (connectors/options.py)."""
    from psabridge.connectors.options import options_model  # on use: the connectors import these settings

    problems: list[Problem] = []
    for index, conn in enumerate(settings.connections):
        model = options_model(conn.system.value)
        try:
            model.model_validate(conn.options)
        except ValidationError as exc:
            prefix: tuple[str | int, ...] = ("connections", index, "options")
            names = [f.alias or name for name, f in model.model_fields.items()]
            problems += problems_from_validation(
                exc, located, prefix=prefix, fields_at=lambda loc, names=names: names, origins=origins
            )
    return problems


def _check_tenancy(
    settings: Settings, located: LocatedYaml, origins: Mapping[tuple[str | int, ...], str]
) -> list[Problem]:
    """Tenants named anywhere must be defined under ``tenants:``; no link may cross tenants (psabridge/tenancy.py)."""
    from psabridge.tenancy import link_problems, named_tenants  # on use: tenancy reads these settings' models

    def problem(loc: tuple[str | int, ...], message: str) -> Problem:
        where = origins.get(loc)
        if where:
            return Problem(where, None, format_loc(loc), message)
        return Problem(located.file, located.line_of(loc), format_loc(loc), message)

    defined = ", ".join(sorted(settings.tenants)) or "none"
    problems = [
        problem(loc, f"tenant {tenant!r} is not defined under tenants: ({defined})")
        for loc, tenant in named_tenants(settings)
        if tenant not in settings.tenants
    ]
    return problems + [problem(loc, message) for loc, message in link_problems(settings)]


def _resolve(
    settings: Settings,
    located: LocatedYaml,
    env: Mapping[str, str],
    origins: Mapping[tuple[str | int, ...], str],
    *,
    secrets: bool = True,
) -> list[Problem]:
    """Resolve relative paths and secrets; collect problems instead of stopping at the first."""
    base = settings.source.parent if settings.source else Path.cwd()
    problems: list[Problem] = []
    if settings.database.startswith("sqlite:///") and not settings.database.startswith("sqlite:////"):
        rel = settings.database[len("sqlite:///") :]
        if rel and rel != ":memory:":
            settings.database = f"sqlite:///{(base / rel).resolve()}"
    if settings.rules is not None and not settings.rules.is_absolute():
        settings.rules = (base / settings.rules).resolve()
    for index, conn in enumerate(settings.connections):
        loc = ("connections", index, "mapping")
        beside = base / "mappings" / f"{conn.system.value}.yaml"
        reference = conn.mapping or (beside if beside.exists() else f"{BUILTIN}{conn.system.value}")
        try:
            conn.mapping = resolve_mapping(reference, base).resolve()
        except UnknownMappingError as exc:
            problems.append(Problem(located.file, located.line_of(loc), format_loc(loc), str(exc)))
        else:
            if not conn.mapping.exists():
                problems.append(
                    Problem(located.file, located.line_of(loc), format_loc(loc), f"file {conn.mapping} does not exist")
                )
        values, found = _resolve_credentials(
            conn.credentials, ("connections", index), base, env, located, origins, secrets=secrets
        )
        conn._credentials = Credentials(values)
        problems.extend(found)
    for index, notifier in enumerate(settings.notifiers):
        values, found = _resolve_credentials(
            notifier.credentials, ("notifiers", index), base, env, located, origins, secrets=secrets
        )
        notifier._credentials = Credentials(values)
        problems.extend(found)
    return problems


def _resolve_credentials(
    raw: Mapping[str, str],
    owner: tuple[str | int, ...],
    base: Path,
    env: Mapping[str, str],
    located: LocatedYaml,
    origins: Mapping[tuple[str | int, ...], str],
    *,
    secrets: bool = True,
) -> tuple[dict[str, SecretStr], list[Problem]]:
    values: dict[str, SecretStr] = {}
    problems: list[Problem] = []
    for key, ref in raw.items():
        loc = (*owner, "credentials", key)
        where = origins.get(loc)

        def problem(message: str, loc: tuple[str | int, ...] = loc, where: str | None = where) -> Problem:
            if where:
                return Problem(where, None, format_loc(loc), message)
            return Problem(located.file, located.line_of(loc), format_loc(loc), message)

        if key.endswith("_env"):
            name = key[: -len("_env")]
            if not env.get(ref):
                if secrets:
                    problems.append(problem(f"environment variable {ref} is not set"))
                continue
            values[name] = SecretStr(env[ref])
        elif key.endswith("_file"):
            name = key[: -len("_file")]
            path = Path(ref) if Path(ref).is_absolute() else base / ref
            try:
                values[name] = SecretStr(path.read_text(encoding="utf-8").strip())
            except OSError as exc:
                if secrets:
                    problems.append(problem(f"cannot read secret file {path}: {exc.strerror or exc}"))
        else:
            if where is None and any(word in key.lower() for word in SECRET_WORDS):
                problems.append(
                    problem(f"secrets must not sit in the config file; write {key}_env: VARIABLE or {key}_file: path")
                )
                continue
            values[key] = SecretStr(ref)
    return values, problems
