"""The checks behind ``FakeEngineServer.assert_recorded`` and ``assert_token``, and their messages.

Each check is a pure function of what the fake holds: ``None`` when it passes, else the whole
failure message (what was expected, what was recorded, the near misses). Messages never show
a token, a header or a query string.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeAlias

from pydantic import BaseModel

from openapi_client.models._base import UUID_RE
from openapi_client.testing._recorded import (
    PLURALS,
    Event,
    RecordedRequest,
    describe_event,
)

__all__ = ["Expected", "recorded_mismatch", "token_mismatch"]

Expected: TypeAlias = "int | Sequence[Mapping[str, Any] | BaseModel] | None"
"""What a test expects of one kind: a count, or one item per event (fields to match), or None."""

_NEAREST = 2  # near misses shown per missing item
_UNRECORDED_SHOWN = 10  # requests that recorded nothing, shown newest last


def recorded_mismatch(
    expected: Mapping[type[Event], Expected],
    events: Mapping[type[Event], Sequence[Event]],
    requests: Sequence[RecordedRequest],
) -> str | None:
    """None when every kind that has an expectation matches; else the failure message.

    A list matches when each item fits a different recorded event (in any order) on the
    fields it names, and no event is left over. An int is the exact number of events.
    """
    sections: list[str] = []
    failed = False
    for model, wanted in expected.items():
        if wanted is None:
            continue
        matched, lines = _compare_kind(model, wanted, events[model])
        failed = failed or not matched
        sections.extend(lines)
    if not failed:
        return None
    unrecorded = [request for request in requests if request.event is None]
    if unrecorded:
        sections.append("requests that recorded nothing (oldest first):")
        sections.extend(f"  {request.describe()}" for request in unrecorded[-_UNRECORDED_SHOWN:])
    return "FakeEngineServer did not record what was expected.\n" + "\n".join(sections)


def _compare_kind(
    model: type[Event],
    wanted: int | Sequence[Mapping[str, Any] | BaseModel],
    recorded: Sequence[Event],
) -> tuple[bool, list[str]]:
    """Whether one kind matches, and the message lines about it."""
    plural = PLURALS[model]
    if isinstance(wanted, (bool, str, bytes)) or not isinstance(wanted, (int, Sequence)):
        raise TypeError(f"{plural}: expected an int or a list of field dicts or models")
    if isinstance(wanted, int):
        if wanted == len(recorded):
            return True, [f"{plural}: as expected ({wanted} recorded)"]
        head = f"{plural}: expected {wanted}, recorded {len(recorded)}: MISMATCH"
        return False, [head, *(f"  recorded: {describe_event(event)}" for event in recorded)]

    items = [_wanted_fields(model, item) for item in wanted]
    pairs = _match(items, recorded)
    if len(pairs) == len(items) == len(recorded):
        return True, [f"{plural}: as expected ({len(recorded)} recorded)"]
    lines = [f"{plural}: expected {len(items)}, recorded {len(recorded)}: MISMATCH"]
    for index, fields in enumerate(items):
        shown = _show_fields(fields)
        if index in pairs:
            found = describe_event(recorded[pairs[index]])
            lines.append(f"  ok       expected #{index + 1} {shown}: {found}")
            continue
        lines.append(f"  MISSING  expected #{index + 1} {shown}")
        lines.extend(_near_misses(fields, recorded, taken=set(pairs.values())))
    leftover = [event for at, event in enumerate(recorded) if at not in pairs.values()]
    lines.extend(f"  EXTRA    not expected: {describe_event(event)}" for event in leftover)
    return False, lines


def _wanted_fields(model: type[Event], item: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """An expected item as ``{python_name: normalised value}``; JSON names accepted too."""
    if isinstance(item, BaseModel):
        data = item.model_dump(exclude_none=True)
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raise TypeError(
            f"expected {PLURALS[model]} items must be dicts of fields or models, "
            f"not {type(item).__name__}"
        )
    names = {name: name for name in model.model_fields}
    names.update({field.alias: name for name, field in model.model_fields.items() if field.alias})
    fields = {}
    for key, value in data.items():
        if key not in names:
            known = ", ".join(model.model_fields)
            raise ValueError(f"{key!r} is not a field of {model.__name__} (fields: {known})")
        fields[names[key]] = _normal(value)
    return fields


def _normal(value: object) -> object:
    """UUIDs compared as the model stores them: lowercase strings."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and UUID_RE.fullmatch(value):
        return value.lower()
    return value


def _differences(fields: Mapping[str, object], event: Event) -> list[str]:
    return [
        f"{name}: expected {value!r}, recorded {_normal(getattr(event, name))!r}"
        for name, value in fields.items()
        if _normal(getattr(event, name)) != value
    ]


def _match(items: Sequence[Mapping[str, object]], recorded: Sequence[Event]) -> dict[int, int]:
    """Pair expected items with distinct recorded events (a maximum bipartite matching)."""
    fits = [
        [at for at, event in enumerate(recorded) if not _differences(fields, event)]
        for fields in items
    ]
    owner: dict[int, int] = {}  # recorded index -> expected index

    def assign(index: int, seen: set[int]) -> bool:
        for at in fits[index]:
            if at in seen:
                continue
            seen.add(at)
            if at not in owner or assign(owner[at], seen):
                owner[at] = index
                return True
        return False

    for index in range(len(items)):
        assign(index, set())
    return {index: at for at, index in owner.items()}


def _near_misses(
    fields: Mapping[str, object], recorded: Sequence[Event], taken: Collection[int]
) -> list[str]:
    """The recorded events closest to a missing item, and how they differ from it."""
    if not recorded:
        return ["           nothing of this kind was recorded"]
    ranked = sorted(
        enumerate(recorded),
        key=lambda pair: (len(_differences(fields, pair[1])), pair[0] in taken),
    )
    lines = []
    for _, event in ranked[:_NEAREST]:
        differences = _differences(fields, event) or ["fits, but is paired with another item"]
        lines.append(f"           nearest (id={event.id}): " + "; ".join(differences))
    return lines


def _show_fields(fields: Mapping[str, object]) -> str:
    if not fields:
        return "{any}"
    return "{" + ", ".join(f"{name}={value!r}" for name, value in fields.items()) + "}"


def token_mismatch(
    requests: Sequence[RecordedRequest], expected: str, api_paths: Collection[str]
) -> str | None:
    """None when every request to the token-protected routes carried ``expected``; else why not.

    At least one such request must have been received. The message names requests, never
    tokens.
    """
    if not isinstance(expected, str) or not expected:
        raise ValueError("expected must be a non-empty token string")
    api = [request for request in requests if request.path.split("?", 1)[0] in api_paths]
    if not api:
        received = "; ".join(request.describe() for request in requests) or "none"
        return (
            "no request reached the routes that need a token "
            f"({', '.join(sorted(api_paths))}), so no token was sent to check. "
            f"Requests received: {received}"
        )
    missing = [request for request in api if request.token_digest is None]
    other = [
        request
        for request in api
        if request.token_digest is not None and not request.token_matches(expected)
    ]
    if not missing and not other:
        return None
    wrong = len(missing) + len(other)
    lines = [f"{wrong} of {len(api)} request(s) that need a token did not send the expected one:"]
    if other:
        lines.append(f"  {len(other)} carried another bearer token (tokens are not shown):")
        lines.extend(f"    {request.describe()}" for request in other)
    if missing:
        lines.append(f"  {len(missing)} carried no bearer token:")
        lines.extend(f"    {request.describe()}" for request in missing)
    return "\n".join(lines)
