"""Checks shared by every layer: hosts, headers, timeouts, and the wording of input errors.

Each check raises ``ApiTypeError``/``ApiValueError`` naming what was wrong, and returns the
normalised value, so callers check once and keep the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import urllib3

from openapi_client._redaction import strip_userinfo
from openapi_client.exceptions import ApiTypeError, ApiValueError, Problem

MAX_TIMEOUT_SECONDS = 1e9
"""Longer timeouts overflow the socket layer (and mean "never"; 1e9 s is 31 years)."""

TimeoutSetting = float | int | tuple[float, float] | urllib3.Timeout
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# -- hosts -----------------------------------------------------------------------------------


def check_url(name: str, value: object) -> str:
    """An ``http(s)://host[:port][/path]`` base URL without query or fragment, trailing ``/`` cut."""
    if not isinstance(value, str):
        raise ApiTypeError(f"{name} must be a str URL, got {type(value).__name__}")
    try:
        parsed = urllib3.util.parse_url(value)
    except urllib3.exceptions.LocationParseError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiValueError(f"{name} must be an http:// or https:// URL, got {_shown(value)}")
    if parsed.query is not None or parsed.fragment is not None:
        raise ApiValueError(f"{name} must not have a query or fragment, got {_shown(value)}")
    return value.rstrip("/")


def _shown(url: str) -> str:
    return repr(strip_userinfo(url))


def is_loopback(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ``::1`` (brackets allowed)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- headers ---------------------------------------------------------------------------------


def check_header(name: object, value: object) -> None:
    """Refuse headers that could split a request (CR, LF, NUL), break its framing, or that
    HTTP cannot carry (a name that is not a token, a value that is not Latin-1)."""
    for text, what in ((name, "name"), (value, "value")):
        if not isinstance(text, str):
            raise ApiTypeError(f"header {name!r}: {what} must be a str, got {type(text).__name__}")
        if "\r" in text or "\n" in text or "\0" in text:
            raise ApiValueError(f"header {name!r}: {what} must not contain CR, LF or NUL")
    assert isinstance(name, str)
    assert isinstance(value, str)
    if not _HEADER_NAME.fullmatch(name):
        raise ApiValueError(f"header {name!r}: name must be an HTTP token such as 'X-Trace-Id'")
    if name.lower() in ("content-length", "transfer-encoding"):
        raise ApiValueError(f"header {name!r}: the SDK sets it from the body")
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ApiValueError(f"header {name!r}: value must be Latin-1 text") from None


def check_headers(name: str, value: object) -> dict[str, str]:
    """A mapping of valid headers, as a new dict."""
    if not isinstance(value, Mapping):
        raise ApiTypeError(
            f"{name} must be a mapping of header names to values, got {type(value).__name__}"
        )
    for header, header_value in value.items():
        try:
            check_header(header, header_value)
        except (ApiTypeError, ApiValueError) as error:
            raise type(error)(f"{name}: {error}") from None
    return dict(value)


def merge_headers(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """Set ``extra`` into ``headers``, each replacing any header of the same name in any case."""
    lowered = {name.lower(): name for name in headers}
    for name, value in extra.items():
        existing = lowered.get(name.lower())
        if existing is not None and existing != name:
            del headers[existing]
        headers[name] = value
        lowered[name.lower()] = name


# -- timeouts --------------------------------------------------------------------------------


def to_timeout(value: object, name: str = "timeout") -> urllib3.Timeout:
    """One number (connect and read each), a (connect, read) pair, or a ``urllib3.Timeout``."""
    if isinstance(value, urllib3.Timeout):
        return _checked_urllib3_timeout(value, name)
    if value is None:
        raise ApiValueError(f"{name}: None would wait forever; give seconds")
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:  # a dict, a set, a pair holding a list: not seconds
        raise ApiTypeError(f"{name}: expected seconds, got {type(value).__name__}") from None
    parts = value if isinstance(value, tuple) else (value,)
    if any(isinstance(part, bool) for part in parts):  # True == 1 would hit the cache below
        raise ApiTypeError(f"{name}: expected seconds as a number, got bool")
    return _timeout_from_hashable(value, name)


@lru_cache(maxsize=64, typed=True)
def _timeout_from_hashable(value: Any, name: str) -> urllib3.Timeout:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ApiValueError(f"{name}: a tuple must be (connect, read)")
        connect, read = value
        return urllib3.Timeout(connect=_seconds(connect, name), read=_seconds(read, name))
    seconds = _seconds(value, name)
    return urllib3.Timeout(connect=seconds, read=seconds)


def _checked_urllib3_timeout(value: urllib3.Timeout, name: str) -> urllib3.Timeout:
    """A copy of a ``urllib3.Timeout`` whose parts pass the same check as plain seconds, and
    that bounds a call: connect and read both set, or total set. urllib3 itself takes ``None``
    (and a part left out: the socket default, normally ``None`` too) to mean wait forever, and
    lets ``inf`` or 1e300 through to fail on every call as the socket layer's OverflowError."""
    parts = {"connect": value._connect, "read": value._read, "total": value.total}
    given = {
        part: _seconds(seconds, f"{name}: urllib3.Timeout {part}")
        for part, seconds in parts.items()
        if seconds is not None and seconds is not urllib3.Timeout.DEFAULT_TIMEOUT
    }
    if "total" not in given and not ("connect" in given and "read" in given):
        raise ApiValueError(
            f"{name}: a urllib3.Timeout must set both connect and read, or total "
            "(a part left out or None would wait forever)"
        )
    unset = urllib3.Timeout.DEFAULT_TIMEOUT
    return urllib3.Timeout(
        connect=given.get("connect", unset), read=given.get("read", unset), total=given.get("total")
    )


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiTypeError(f"{name}: expected seconds as a number, got {type(value).__name__}")
    if not 0 < value <= MAX_TIMEOUT_SECONDS:  # also refuses NaN, inf and ints beyond float
        raise ApiValueError(
            f"{name}: must be a positive number of seconds up to {MAX_TIMEOUT_SECONDS:g}"
        )
    return float(value)


def timeout_budget(timeout: urllib3.Timeout) -> float:
    """The longest a whole call (every attempt, every byte, every wait) may take."""
    if isinstance(timeout.total, int | float):
        return float(timeout.total)
    parts = [
        t for t in (timeout.connect_timeout, timeout.read_timeout) if isinstance(t, int | float)
    ]
    return float(sum(parts)) if parts else float("inf")


# -- input errors ----------------------------------------------------------------------------


def location(path: Sequence[str | int]) -> str:
    """A problem's location as users write it: ``leadUuid``, ``items.0.id``, ``(body)``."""
    return ".".join(str(p) for p in path) or "(body)"


def describe_problems(problems: Sequence[Problem]) -> str:
    """``"a: message; b: message"`` for an error message."""
    return "; ".join(f"{location(p.path)}: {p.message}" for p in problems)
