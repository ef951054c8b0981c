"""The machinery of ``Configuration``'s settings: a descriptor per setting, and the checks that
turn what is given into what is stored (each names the setting in its errors)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import urllib3

from openapi_client.exceptions import ApiTypeError, ApiValueError
from openapi_client.retries import RetryPolicy
from openapi_client.validation import to_timeout

if TYPE_CHECKING:
    from openapi_client.configuration import Configuration

StoredT = TypeVar("StoredT")
ReadT = TypeVar("ReadT")
GivenT = TypeVar("GivenT")
SocketOption = tuple[int, int, int | bytes]
SocketOptions = tuple[SocketOption, ...]


class Setting(Generic[ReadT, GivenT]):
    """One setting: its default, and the check that turns what is given into what is stored.

    ``read`` (when given) derives what reading the setting returns from what is stored;
    ``on_change`` reacts to a new value (the logging settings switch handlers).
    """

    def __init__(
        self,
        check: Callable[[str, Any], Any],
        default: Any,
        *,
        read: Callable[[Configuration, Any], ReadT] | None = None,
        on_change: Callable[[Configuration, Any, Any], None] | None = None,
        check_in_context: Callable[[Configuration, Any], None] | None = None,
    ) -> None:
        self.check = check
        self.check_in_context = check_in_context
        """A further check against the rest of the configuration (e.g. an index into a list)."""
        self.default = default
        self.read = read
        self.on_change = on_change
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, config: None, owner: type) -> Setting[ReadT, GivenT]: ...
    @overload
    def __get__(self, config: Configuration, owner: type) -> ReadT: ...
    def __get__(self, config: Configuration | None, owner: type) -> Any:
        if config is None:
            return self
        stored = config._values[self.name]
        return stored if self.read is None else self.read(config, stored)

    def __set__(self, config: Configuration, value: GivenT) -> None:
        stored = self.check(self.name, value)
        if self.check_in_context is not None:
            self.check_in_context(config, stored)
        old = config._values.get(self.name)
        config._values[self.name] = stored
        config._generation += 1
        if self.on_change is not None:
            self.on_change(config, old, stored)


# -- the checks (each takes the setting's name, for its messages) ------------------------------


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ApiTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ApiValueError(f"{name} must be >= 1, got {value}")
    return value


def optional(check: Callable[[str, Any], StoredT]) -> Callable[[str, Any], StoredT | None]:
    def optional(name: str, value: object) -> StoredT | None:
        return None if value is None else check(name, value)

    return optional


def check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ApiTypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def check_existing_path(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ApiTypeError(f"{name} must be a file path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.exists(path):
        raise ApiValueError(f"{name}: no such file: {path!r}")
    return path


def check_writable_path(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ApiTypeError(f"{name} must be a file path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ApiValueError(f"{name}: the folder of {path!r} does not exist")
    return path


def check_token(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ApiTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value != value.strip() or any(c in value for c in "\r\n\0"):
        raise ApiValueError(
            f"{name} must be non-empty, without whitespace at its ends, CR, LF or NUL "
            "(use None for no token)"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ApiValueError(f"{name} must be Latin-1 text: HTTP headers cannot carry it") from None
    return value


def check_cert_data(name: str, value: object) -> str | bytes:
    if not isinstance(value, str | bytes):
        raise ApiTypeError(
            f"{name} must be PEM text (str) or DER bytes, got {type(value).__name__}"
        )
    return value


def check_hostname(name: str, value: object) -> str | bool:
    if value is not False and not isinstance(value, str):
        raise ApiTypeError(f"{name} must be a host name or False, got {value!r}")
    return value


def check_index(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ApiValueError(f"{name} must be >= 0, got {value}")
    return value


def check_string_map(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ApiTypeError(f"{name} must be a mapping of str to str")
    return dict(value)


def check_socket_options(name: str, value: object) -> SocketOptions:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ApiTypeError(f"{name} must be a list of (level, option, value) tuples")
    options = []
    for option in value:
        if not (
            isinstance(option, tuple)
            and len(option) == 3
            and all(isinstance(part, int) and not isinstance(part, bool) for part in option[:2])
            and isinstance(option[2], int | bytes)
        ):
            raise ApiTypeError(f"{name}: {option!r} is not a (level, option, value) tuple")
        options.append(option)
    return tuple(options)


def check_log_format(name: str, value: object) -> str:
    text = check_text(name, value)
    try:
        logging.Formatter(text, validate=True)
    except ValueError as error:
        raise ApiValueError(f"{name}: {error}") from None
    return text


def check_retries(name: str, value: object) -> RetryPolicy:
    return RetryPolicy.from_setting(value)


def check_timeout(name: str, value: object) -> urllib3.Timeout:
    return to_timeout(value, name)
