"""What the fake keeps of each request: the request, its response's status, the event it stored.

The bearer token itself is never kept: only a keyed digest of it, which can tell whether a
given token was the one sent (``RecordedRequest.token_matches``) and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from typing import Final, Literal, TypeAlias

from openapi_client.models import OfferDisplay, SessionInit

__all__ = ["Event", "EventKind", "RecordedRequest", "bearer_token", "digest_token", "event_model"]

Event: TypeAlias = OfferDisplay | SessionInit
"""An event the fake stores."""
EventKind: TypeAlias = Literal["offer_display", "session_init"]
"""An event kind by name, as the helpers that take a kind accept it (beside the model class)."""

EVENT_MODELS: Final[dict[str, type[Event]]] = {
    "offer_display": OfferDisplay,
    "session_init": SessionInit,
}
PLURALS: Final[dict[type[Event], str]] = {
    OfferDisplay: "offer displays",
    SessionInit: "session inits",
}

# A fresh key per process: digests cannot be compared across runs or reversed by a dictionary
# of likely tokens computed in advance.
_DIGEST_KEY: Final = os.urandom(32)


def digest_token(token: str) -> bytes:
    """A keyed digest of a bearer token; equal digests mean equal tokens."""
    return hmac.new(_DIGEST_KEY, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, else None."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def event_model(kind: type[Event] | str) -> type[Event]:
    """The model of an event kind given as ``"offer_display"``/``"session_init"`` or a class."""
    model = EVENT_MODELS.get(kind) if isinstance(kind, str) else kind
    if model not in PLURALS:
        raise ValueError(
            f"unknown event kind {kind!r}: use 'offer_display' or OfferDisplay, "
            "'session_init' or SessionInit"
        )
    return model


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the fake finished with: answered, refused, or hung up on.

    ``headers`` has credentials redacted (``Bearer [REDACTED]``); ask :meth:`token_matches`
    which token was sent. ``status`` is the status answered, ``None`` when the fake hung up
    without answering (``drop_next``, or a delayed request when the server stopped).
    ``event`` is the ``OfferDisplay`` or ``SessionInit`` the request stored, if any.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    event: Event | None = None
    token_digest: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    """Keyed digest of the bearer token sent (see :func:`digest_token`); never the token."""

    def token_matches(self, expected: str) -> bool:
        """Whether the request carried ``Authorization: Bearer <expected>`` (constant-time)."""
        if not isinstance(expected, str) or not expected:
            raise ValueError("expected must be a non-empty token string")
        if self.token_digest is None:
            return False
        return hmac.compare_digest(self.token_digest, digest_token(expected))

    def describe(self) -> str:
        """One line for logs and failure messages: method, path, status, what it recorded.

        The query string is left out (a credential may travel there); no header is shown.
        """
        path = self.path.split("?", 1)[0] + ("?..." if "?" in self.path else "")
        status = "no response" if self.status is None else str(self.status)
        return f"{self.method} {path} -> {status}, {describe_event(self.event)}"


def describe_event(event: Event | None) -> str:
    """``recorded offer display id=1 lead_uuid=... rate_table_uuid=... offer_uuid=...``."""
    if event is None:
        return "recorded nothing"
    kind = "offer display" if isinstance(event, OfferDisplay) else "session init"
    return f"recorded {kind} " + " ".join(
        f"{name}={value}" for name, value in identifying_fields(event).items()
    )


def identifying_fields(event: Event) -> dict[str, object]:
    """The fields that tell events apart to a reader: the id and the UUIDs the client chose."""
    if isinstance(event, OfferDisplay):
        return {
            "id": event.id,
            "lead_uuid": event.lead_uuid,
            "rate_table_uuid": event.rate_table_uuid,
            "offer_uuid": event.offer_uuid,
        }
    return {"id": event.id, "session_uuid": event.session_uuid}
