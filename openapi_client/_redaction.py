"""The secrets a request carries, and their removal from everything a response brings back.

One policy for every secret (the configured token, per-call auth, credential headers, query
credentials), applied wherever response text surfaces: exception messages, reasons, bodies,
headers, parsed errors and log lines.

- A secret of ``MIN_SECRET_LENGTH`` characters or more is replaced wherever it appears, in its
  raw form and in the escaped forms a server echoes it in: JSON (``\\u00f6``, ``\\/``),
  percent-encoding (``%C3%B6``, ``+``) and HTML entities, in any mix and hex case.
- A shorter secret cannot be told from ordinary text (``t`` is in "route"), so it is replaced
  only where it stands as a credential: after an auth scheme (``Bearer t``), as a ``key=t``
  value, as a whole quoted string (``"t"``) or as the whole text of a value. Prose is never
  rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Header names (lower case) whose values are credentials, whoever sets them."""

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_JSON_SHORT_ESCAPES = {'"': r"\"", "\\": r"\\", "/": r"\/"}
_HTML_ENTITIES = {
    "&": ("&amp;",), "<": ("&lt;",), ">": ("&gt;",),
    '"': ("&quot;", "&#34;"), "'": ("&#39;", "&#x27;"),
}  # fmt: skip
_SCHEME = r"(?i:\b(?:bearer|basic|token|digest|apikey)\s+)"
_VALUE_END = r"(?=$|[\s&;,\"'\\])"


def header_secrets(name: str, value: str) -> tuple[str, ...]:
    """The secrets in one header: the credential after its scheme (``Bearer x`` → ``x``), each
    cookie's value, or the whole value; nothing for headers that are not credentials."""
    if name.lower() not in CREDENTIAL_HEADERS or not value.strip():
        return ()
    if name.lower() == "cookie":
        values = [part.partition("=")[2].strip() for part in value.split(";") if "=" in part]
        return tuple(v for v in values if v) or (value.strip(),)
    scheme, _, credential = value.strip().partition(" ")
    return (credential.strip() or scheme,)


def mask_credential_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of request headers for logs and recordings: credential headers keep only their
    scheme (``Bearer [REDACTED]``), so a reader still sees which kind of auth was sent."""
    return {name: _mask(name, value) for name, value in headers.items()}


def _mask(name: str, value: str) -> str:
    if name.lower() not in CREDENTIAL_HEADERS:
        return value
    parts = value.split(None, 1)
    if name.lower() != "cookie" and len(parts) == 2:
        return f"{parts[0]} {REDACTED}"
    return REDACTED


def strip_userinfo(url: str) -> str:
    """``https://user:password@host/`` → ``https://user:***@host/``; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    userinfo, _, hostport = authority.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{path}"


class Redactor:
    """Replaces the given secrets in text, following the module's policy. Immutable."""

    __slots__ = ("_long", "_short", "secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        long = [_spellings(s) for s in self.secrets if len(s) >= MIN_SECRET_LENGTH]
        short = "|".join(_spellings(s) for s in self.secrets if len(s) < MIN_SECRET_LENGTH)
        self._long = re.compile("|".join(long)) if long else None
        self._short = (
            [
                re.compile(f"({_SCHEME})(?:{short}){_VALUE_END}"),
                re.compile(f"(=)(?:{short}){_VALUE_END}"),
                re.compile(f'(")(?:{short})(?=")'),
                re.compile(f"(')(?:{short})(?=')"),
                re.compile(rf'(\\")(?:{short})(?=\\")'),
                re.compile(rf"(\A)(?:{short})\Z"),
            ]
            if short
            else []
        )

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, text: str) -> str:
        """``text`` with every recognisable occurrence of a secret replaced by ``[REDACTED]``."""
        if self._long is not None:
            text = self._long.sub(REDACTED, text)
        for pattern in self._short:
            text = pattern.sub(_keep_prefix, text)
        return text

    def optional(self, text: str | None) -> str | None:
        """``text()`` that lets ``None`` through."""
        return None if text is None else self.text(text)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Response headers with every secret removed from their values."""
        return {name: self.text(value) for name, value in headers.items()}

    def url(self, url: str) -> str:
        """A URL fit for messages and logs: secrets (query credentials) and passwords removed."""
        return self.text(strip_userinfo(url))


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _spellings(secret: str) -> str:
    """A regex matching ``secret`` written raw or with any of its characters escaped."""
    return "".join(_char_spellings(char) for char in secret)


def _char_spellings(char: str) -> str:
    if char in _UNRESERVED:
        return re.escape(char)
    forms = [re.escape(char), *(re.escape(e) for e in _HTML_ENTITIES.get(char, ()))]
    escapes = ["".join(_json_unicode_escape(unit) for unit in _utf16_units(char))]
    if char in _JSON_SHORT_ESCAPES:
        escapes.append(re.escape(_JSON_SHORT_ESCAPES[char]))
    # Each JSON escape also as it reads inside a Python repr (backslash doubled): an escaped
    # echo often reaches a log through repr(dict) or repr(str).
    forms += escapes + [e.replace(r"\\", r"\\\\") for e in escapes]
    forms.append("".join(f"%{_any_case(f'{byte:02x}')}" for byte in char.encode("utf-8")))
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


def _utf16_units(char: str) -> list[int]:
    encoded = char.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def _json_unicode_escape(unit: int) -> str:
    return r"\\u" + _any_case(f"{unit:04x}")


def _any_case(hex_digits: str) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in hex_digits)


@lru_cache(maxsize=128)
def redactor_for(secrets: tuple[str, ...]) -> Redactor:
    """The redactor of a set of secrets, compiled once."""
    return Redactor(secrets)


NO_SECRETS = Redactor(())
