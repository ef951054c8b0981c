"""Shared base for every model: pydantic v2 declarations plus the generated-client helpers.

Fields are declared by their Python names; their JSON names are the camelCase of those
(``lead_uuid`` is ``leadUuid`` on the wire), made by the model's ``alias_generator`` rather
than by ``Field(alias=...)``. That keeps the Python name as the constructor's keyword for type
checkers, with or without pydantic's mypy plugin (a literal ``alias=`` would make the camelCase
name the typed keyword instead). The contract tests hold the JSON names to the OpenAPI document.
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
import types
import typing
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema
from typing_extensions import Self

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue

_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID_RE = re.compile(_UUID_PATTERN)


class _UuidString:
    """Schema of a ``format: uuid`` field: a canonical lowercase string; ``uuid.UUID`` accepted.

    Built as a pydantic-core schema so that strings are checked in Rust (no Python call per
    field); only a ``uuid.UUID`` instance takes the Python branch that turns it into a string.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        text = core_schema.str_schema(pattern=_UUID_PATTERN, to_lower=True, strict=True)
        from_uuid = core_schema.chain_schema(
            [
                core_schema.is_instance_schema(uuid.UUID),
                core_schema.no_info_plain_validator_function(str),
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=text,
            python_schema=core_schema.union_schema(
                [text, from_uuid],
                custom_error_type=UUID_ERROR,
                custom_error_message="Input should be a UUID such as 'f914eb07-a64f-51d8-b882-ff508a8c5c81'",
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "uuid"}


UUID_ERROR = "uuid_format"
UuidStr = Annotated[str, _UuidString]
"""A ``format: uuid`` string: hyphenated 8-4-4-4-12 hex, stored and sent in canonical lowercase."""
UuidInput = str | uuid.UUID
"""What a UUID parameter accepts: a UUID string in any case, or a ``uuid.UUID``."""


def _python_signature(model: type[BaseModel]) -> inspect.Signature:
    """What ``help()`` and ``inspect.signature`` show: Python names, plain types (``str``).

    pydantic's own would show the JSON names and ``Annotated[str, <class '_UuidString'>]``.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(
            name,
            keyword,
            annotation=_without_metadata(field.annotation),
            default=(
                inspect.Parameter.empty
                if field.is_required()
                else field.get_default(call_default_factory=False)
            ),
        )
        for name, field in model.model_fields.items()
    ]
    if model.model_config.get("extra") == "allow":  # fields the API adds later are kept
        parameters.append(
            inspect.Parameter("extra_fields", inspect.Parameter.VAR_KEYWORD, annotation=Any)
        )
    return inspect.Signature(parameters, return_annotation=None)


class _PythonSignature:
    """``Model.__signature__``: built when ``inspect`` or ``help()`` asks, not at import."""

    def __get__(self, instance: object, owner: type[BaseModel]) -> inspect.Signature:
        return _python_signature(owner)


_SIGNATURE = _PythonSignature()


def _without_metadata(annotation: Any) -> Any:
    """``Optional[Annotated[str, ...]]`` as ``str | None``: what a reader of a signature needs."""
    holder = types.SimpleNamespace(__annotations__={"value": annotation})
    plain = typing.get_type_hints(holder)["value"]  # typing strips Annotated, nested too
    if typing.get_origin(plain) is typing.Union:
        return functools.reduce(operator.or_, typing.get_args(plain))
    return plain


class Model(BaseModel):
    """Base of the API's models: snake_case fields, camelCase aliases on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, validate_assignment=True
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Replaces pydantic's (JSON names, Annotated types); made on first use, as pydantic's.
        cls.__signature__ = _SIGNATURE  # type: ignore[assignment]

    def to_str(self) -> str:
        """The model as a readable string (a pretty-printed ``to_dict()``)."""
        import pprint

        return pprint.pformat(self.to_dict())

    def to_json(self) -> str:
        """The model as the JSON the API speaks (camelCase keys, ISO datetimes)."""
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """The model as a dict with the API's camelCase keys; unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, json_str: str | bytes) -> Self:
        """Parse and validate a JSON document into this model."""
        return cls.model_validate_json(json_str)

    @classmethod
    def from_dict(cls, obj: dict[str, Any] | None) -> Self | None:
        """Validate a dict (camelCase or snake_case keys) into this model; ``None`` stays ``None``."""
        if obj is None:
            return None
        return cls.model_validate(obj)


class RequestModel(Model):
    """A body the client sends: unknown keys are refused, so a typo cannot silently drop a field."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(Model):
    """A body the server sends: unknown keys are kept, so newer API fields survive a round trip."""

    model_config = ConfigDict(extra="allow")
