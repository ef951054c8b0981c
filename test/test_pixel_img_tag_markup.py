"""The pixel's ``<img>`` tag is markup to template engines (``__html__``) and a str to the rest."""

from __future__ import annotations

import html
import uuid

import pytest
from samples import LEAD, OFFER, RATE_TABLE

from openapi_client import ApiClient, Configuration, UIEventsApi


def img_tag(host: str = "https://api.engine.tech") -> str:
    api = UIEventsApi(ApiClient(Configuration(host=host)))
    return api.offer_display_pixel_img_tag(LEAD, uuid.UUID(RATE_TABLE), OFFER)


def autoescape(value: object) -> str:
    """A template engine's escaping in miniature: what has ``__html__`` is trusted markup."""
    markup = getattr(value, "__html__", None)
    return str(markup()) if markup is not None else html.escape(str(value), quote=True)


def test_a_template_inserts_the_tag_as_markup_not_as_text() -> None:
    tag = img_tag()

    assert autoescape(tag) == tag
    assert autoescape(f"{tag}") == html.escape(tag)  # formatted into plain text it is text again
    assert autoescape(tag).startswith('<img src="https://api.engine.tech/uiEvent/offerDisplays/')


def test_the_tag_is_a_plain_str_to_everything_else() -> None:
    tag = img_tag()

    assert isinstance(tag, str)
    assert tag == str(tag)
    assert type(tag + "") is str
    assert not hasattr(tag + " ", "__html__")  # joined with other text, it is escaped as usual


def test_a_host_with_markup_characters_stays_escaped_inside_the_markup() -> None:
    tag = img_tag('https://cdn.example.test/a&b"<c')

    assert autoescape(tag) == tag
    assert "a&amp;b&quot;&lt;c/uiEvent" in tag
    assert tag.count("<") == 1


def test_markupsafe_returns_the_tag_unchanged() -> None:
    markupsafe = pytest.importorskip("markupsafe")  # installed here by Werkzeug, not by the SDK
    tag = img_tag()

    escaped = markupsafe.escape(tag)

    assert isinstance(escaped, markupsafe.Markup)
    assert str(escaped) == tag
    assert str(markupsafe.Markup("<p>{}</p>").format(tag)) == f"<p>{tag}</p>"
    assert str(markupsafe.Markup("<p>{}</p>").format(str(tag) + "")) != f"<p>{tag}</p>"
