"""The UI Events operations: each described once as an ``Endpoint``, each public method a thin wrapper."""

from __future__ import annotations

import uuid
from typing import Any

import urllib3
from typing_extensions import Unpack

from openapi_client._html import SafeHtml
from openapi_client.api_client import ApiClient, RequestOptions
from openapi_client.api_response import ApiResponse
from openapi_client.endpoint import Endpoint, PathParam, uuid_text
from openapi_client.models.offer_display import OfferDisplay
from openapi_client.models.offer_display_create_data import OfferDisplayCreateData
from openapi_client.models.session_init import SessionInit
from openapi_client.models.session_init_create_data import SessionInitCreateData

CREATE_OFFER_DISPLAY = Endpoint(
    name="create_offer_display",
    method="POST",
    path="/uiEvent/offerDisplays",
    request_model=OfferDisplayCreateData,
    response_model=OfferDisplay,
    body_param="offer_display_create_data",
    body_required=True,
)
CREATE_SESSION_INIT = Endpoint(
    name="create_session_init",
    method="POST",
    path="/uiEvent/sessionInits",
    request_model=SessionInitCreateData,
    response_model=SessionInit,
    body_param="session_init_create_data",
    body_required=False,
)
OFFER_DISPLAY_PIXEL = Endpoint[Any, Any](
    name="offer_display_pixel",
    method="GET",
    path="/uiEvent/offerDisplays/{leadUuid}/{rateTableUuid}/{offerUuid}/pixel.gif",
    path_params=(
        PathParam("leadUuid", uuid_text),
        PathParam("rateTableUuid", uuid_text),
        PathParam("offerUuid", uuid_text),
    ),
    auth=(),  # a browser loads it: the URL itself is the record
)

OfferDisplayBody = OfferDisplayCreateData | dict[str, Any]
SessionInitBody = SessionInitCreateData | dict[str, Any] | None


class UIEventsApi:
    """Record UI events: a user began a session, an offer was shown."""

    def __init__(self, api_client: ApiClient | None = None) -> None:
        self.api_client = api_client if api_client is not None else ApiClient.get_default()

    # -- POST /uiEvent/offerDisplays -----------------------------------------------------------

    def create_offer_display(
        self,
        offer_display_create_data: OfferDisplayBody | None = None,
        **options: Unpack[RequestOptions],
    ) -> OfferDisplay:
        """Record that an offer was shown; the body names the lead, rate table and offer."""
        return self.api_client.call(CREATE_OFFER_DISPLAY, offer_display_create_data, options).data

    def create_offer_display_with_http_info(
        self,
        offer_display_create_data: OfferDisplayBody | None = None,
        **options: Unpack[RequestOptions],
    ) -> ApiResponse[OfferDisplay]:
        """``create_offer_display`` with status, headers, raw bytes and retry count."""
        return self.api_client.call(CREATE_OFFER_DISPLAY, offer_display_create_data, options)

    def create_offer_display_without_preload_content(
        self,
        offer_display_create_data: OfferDisplayBody | None = None,
        **options: Unpack[RequestOptions],
    ) -> urllib3.BaseHTTPResponse:
        """``create_offer_display`` returning urllib3's unread response (status not checked)."""
        return self.api_client.call_raw(CREATE_OFFER_DISPLAY, offer_display_create_data, options)

    # -- POST /uiEvent/sessionInits ------------------------------------------------------------

    def create_session_init(
        self,
        session_init_create_data: SessionInitBody = None,
        **options: Unpack[RequestOptions],
    ) -> SessionInit:
        """Record that a user began a session; with no body the server makes the ``sessionUuid``."""
        return self.api_client.call(CREATE_SESSION_INIT, session_init_create_data, options).data

    def create_session_init_with_http_info(
        self,
        session_init_create_data: SessionInitBody = None,
        **options: Unpack[RequestOptions],
    ) -> ApiResponse[SessionInit]:
        """``create_session_init`` with status, headers, raw bytes and retry count."""
        return self.api_client.call(CREATE_SESSION_INIT, session_init_create_data, options)

    def create_session_init_without_preload_content(
        self,
        session_init_create_data: SessionInitBody = None,
        **options: Unpack[RequestOptions],
    ) -> urllib3.BaseHTTPResponse:
        """``create_session_init`` returning urllib3's unread response (status not checked)."""
        return self.api_client.call_raw(CREATE_SESSION_INIT, session_init_create_data, options)

    # -- GET /uiEvent/offerDisplays/{leadUuid}/{rateTableUuid}/{offerUuid}/pixel.gif ----------

    def offer_display_pixel_url(
        self,
        lead_uuid: str | uuid.UUID,
        rate_table_uuid: str | uuid.UUID,
        offer_uuid: str | uuid.UUID,
    ) -> str:
        """The URL of the 1x1 GIF that records an offer display when a browser loads it."""
        path = OFFER_DISPLAY_PIXEL.build_path(
            {"leadUuid": lead_uuid, "rateTableUuid": rate_table_uuid, "offerUuid": offer_uuid}
        )
        return self.api_client.configuration.host + path

    def offer_display_pixel_img_tag(
        self,
        lead_uuid: str | uuid.UUID,
        rate_table_uuid: str | uuid.UUID,
        offer_uuid: str | uuid.UUID,
    ) -> SafeHtml:
        """An HTML-escaped ``<img>`` tag for the pixel, to render beside the offer server-side.

        A ``str`` with ``__html__``: Jinja2 and Django templates insert it as markup.
        """
        import html

        url = self.offer_display_pixel_url(lead_uuid, rate_table_uuid, offer_uuid)
        return SafeHtml(
            f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" '
            'style="display:none">'
        )
