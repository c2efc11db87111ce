"""httpx.Auth classes for static vendor credentials: Basic, fixed headers, and both at once."""

from __future__ import annotations

import base64
from collections.abc import Generator, Mapping

import httpx

from psabridge.settings import ConnectionSettings

__all__ = ["BasicAuth", "HeaderAuth", "MultiAuth", "require_secret"]


def require_secret(settings: ConnectionSettings, name: str) -> str:
    """The plain value of credential ``name`` of a connection.

    Raises:
        ConfigError: the credential is not configured (the message says how to set it).
    """
    return settings.secrets.require(name, connection=settings.name)


class BasicAuth(httpx.Auth):
    """HTTP Basic authentication. The header is built once; ``repr`` never shows the credentials.

    Args:
        username: the user part (ConnectWise ``company+publicKey``, a Freshservice API key ...).
        password: the password part.
    """

    def __init__(self, username: str, password: str) -> None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    @classmethod
    def from_secrets(cls, settings: ConnectionSettings, username: str, password: str) -> BasicAuth:
        """Basic auth from two credentials of the connection, named ``username`` and ``password``.

        Raises:
            ConfigError: either credential is missing.
        """
        return cls(require_secret(settings, username), require_secret(settings, password))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the Authorization header."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BasicAuth(***)"


class HeaderAuth(httpx.Auth):
    """Fixed request headers that carry credentials or integration identifiers.

    Args:
        headers: header name -> value, e.g. ``{"ApiIntegrationCode": ..., "UserName": ..., "Secret": ...}``.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    @classmethod
    def from_secrets(cls, settings: ConnectionSettings, headers: Mapping[str, str]) -> HeaderAuth:
        """Headers whose values are credentials of the connection: ``{"clientId": "client_id"}``.

        Args:
            settings: the connection.
            headers: header name -> credential name.

        Raises:
            ConfigError: a credential is missing.
        """
        return cls({header: require_secret(settings, credential) for header, credential in headers.items()})

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the headers."""
        request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({sorted(self._headers)})"


class MultiAuth(httpx.Auth):
    """Several static auths applied to every request, in order (ConnectWise: Basic plus the ``clientId`` header).

    Only auths that add headers without answering challenges belong here; an OAuth flow that re-sends on 401 is
    used on its own.
    """

    def __init__(self, *auths: httpx.Auth) -> None:
        self._auths = auths

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Let each auth add its headers, then send once."""
        for auth in self._auths:
            flow = auth.sync_auth_flow(request)
            request = next(flow)
            flow.close()
        yield request

    def __repr__(self) -> str:
        return f"MultiAuth({', '.join(repr(a) for a in self._auths)})"
