"""The AWS IoT registry: a thing's attributes (``iot:DescribeThing``, ``iot:CreateThing``).

The local stack registers its devices on the moto server, so the same calls answer
in both places. What the attributes mean is :mod:`oneeye.cloud.devices`'s business.
"""

from __future__ import annotations

from typing import Any

from oneeye import aws
from oneeye.errors import AlreadyExists, NotFound


def describe_thing(thing: str) -> dict[str, Any] | None:
    """The thing's attributes from the IoT registry, or None when it does not exist."""
    try:
        with aws.errors():
            resp = aws.client("iot").describe_thing(thingName=thing)
    except NotFound:
        return None
    return dict(resp.get("attributes") or {})


def put_thing(thing: str, attributes: dict[str, str]) -> None:
    """Create ``thing`` with ``attributes``, or replace the attributes of an existing one."""
    iot = aws.client("iot")
    try:
        with aws.errors():
            iot.create_thing(thingName=thing, attributePayload={"attributes": attributes})
    except AlreadyExists:
        iot.update_thing(thingName=thing, attributePayload={"attributes": attributes,
                                                              "merge": False})
