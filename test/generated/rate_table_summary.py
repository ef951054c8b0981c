# ruff: noqa
# mypy: ignore-errors
"""A model written the way openapi-generator 7.x writes one (pydantic v2, aliases, helpers)."""

from __future__ import annotations

import json
import pprint
from typing import Any, ClassVar, Dict, List, Optional, Set

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from typing_extensions import Self


class RateTableSummary(BaseModel):
    """RateTableSummary"""

    uuid: StrictStr
    lead_uuid: StrictStr = Field(alias="leadUuid")
    offer_count: StrictInt = Field(alias="offerCount")
    tags: Optional[List[StrictStr]] = None
    __properties: ClassVar[List[str]] = ["uuid", "leadUuid", "offerCount", "tags"]

    model_config = ConfigDict(
        populate_by_name=True,
        validate_assignment=True,
        protected_namespaces=(),
    )

    def to_str(self) -> str:
        """Returns the string representation of the model using alias"""
        return pprint.pformat(self.model_dump(by_alias=True))

    def to_json(self) -> str:
        """Returns the JSON representation of the model using alias"""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> Optional[Self]:
        """Create an instance of RateTableSummary from a JSON string"""
        return cls.from_dict(json.loads(json_str))

    def to_dict(self) -> Dict[str, Any]:
        """Return the dictionary representation of the model using alias."""
        excluded_fields: Set[str] = set([])
        return self.model_dump(by_alias=True, exclude=excluded_fields, exclude_none=True)

    @classmethod
    def from_dict(cls, obj: Optional[Dict[str, Any]]) -> Optional[Self]:
        """Create an instance of RateTableSummary from a dict"""
        if obj is None:
            return None
        if not isinstance(obj, dict):
            return cls.model_validate(obj)
        return cls.model_validate(
            {
                "uuid": obj.get("uuid"),
                "leadUuid": obj.get("leadUuid"),
                "offerCount": obj.get("offerCount"),
                "tags": obj.get("tags"),
            }
        )
