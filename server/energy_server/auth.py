"""Bearer-token authentication with operator-configured scopes.

The operator lists tokens in a file (`ENERGY_AUTH_TOKENS_FILE`), one per line:

    <name> <scope>[,<scope>...] sha256:<hex digest of the token>

Only digests are stored, so the file is not a secret store, and a token is
never logged: log lines name the token's `name`. `python -m energy_server
token <name> --scopes ingest,analytics` makes a new token and its line.

Scopes: `ingest` for IngestService, `analytics` for AnalyticsService's
reads, `admin` for LinkVehicle and MetricsService. Health and reflection
stay open (reflection can be switched off). Any other method needs `admin`.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from energy_server.errors import PermissionDenied, Unauthenticated

__all__ = ["Authorizer", "Principal", "Scope", "load_tokens", "new_token"]


class Scope(enum.Enum):
    INGEST = "ingest"
    ANALYTICS = "analytics"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to, by the operator's name for it, and what it may do."""

    name: str
    scopes: frozenset[Scope]


# First match wins; a method matched by none needs ADMIN. None means open to all.
_REQUIRED_SCOPE: tuple[tuple[str, Scope | None], ...] = (
    ("/grpc.health.v1.Health/", None),
    ("/grpc.reflection.v1alpha.ServerReflection/", None),
    ("/grpc.reflection.v1.ServerReflection/", None),
    ("/energy.v1.IngestService/", Scope.INGEST),
    ("/energy.v1.AnalyticsService/LinkVehicle", Scope.ADMIN),
    ("/energy.v1.AnalyticsService/", Scope.ANALYTICS),
    ("/energy.v1.MetricsService/", Scope.ADMIN),
)
_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<scopes>\S+)\s+sha256:(?P<digest>[0-9a-f]{64})$")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> dict[str, Principal]:
    """Digest -> principal, from the tokens file; ValueError names the bad line."""
    principals: dict[str, Principal] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected '<name> <scope>[,<scope>] sha256:<64 hex digits>'")
        try:
            scopes = frozenset(Scope(scope) for scope in match["scopes"].split(","))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise ValueError(f"{path}:{number}: scopes are {known}") from None
        principals[match["digest"]] = Principal(match["name"], scopes)
    return principals


def new_token(name: str, scopes: Iterable[Scope]) -> tuple[str, str]:
    """A fresh random token and the line that grants it `scopes` in the tokens file."""
    token = secrets.token_urlsafe(32)
    line = f"{name} {','.join(scope.value for scope in scopes)} sha256:{_digest(token)}"
    return token, line


def required_scope(method: str) -> Scope | None:
    for prefix, scope in _REQUIRED_SCOPE:
        if method.startswith(prefix):
            return scope
    return Scope.ADMIN


class Authorizer:
    """Checks a call's bearer token against the method's scope; no tokens configured means open."""

    def __init__(self, principals: Mapping[str, Principal] | None) -> None:
        self._principals = principals

    def check(self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal | None:
        """The caller, or None where no token is needed; Unauthenticated / PermissionDenied otherwise."""
        if self._principals is None:
            return None
        scope = required_scope(method)
        if scope is None:
            return None
        token = _bearer_token(metadata)
        if token is None:
            raise Unauthenticated("this call needs 'authorization: Bearer <token>' metadata")
        # Looked up by digest: timing can tell nothing about the token itself.
        principal = self._principals.get(_digest(token))
        if principal is None:
            raise Unauthenticated("the bearer token is not valid")
        if scope not in principal.scopes:
            raise PermissionDenied(f"this call needs the '{scope.value}' scope")
        return principal


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
