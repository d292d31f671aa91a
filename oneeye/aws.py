"""The one factory for boto3 clients.

Every AWS call in OneEye goes through :func:`client`, so the local stack only has
to set ``AWS_ENDPOINT_URL`` (a moto server) and everything — Lambdas, CLI,
edge gallery sync — talks to it through the same code as in AWS.
Per-service endpoints (``AWS_ENDPOINT_URL_S3`` …) are honoured too.
"""

from __future__ import annotations

import os
import threading
from typing import Any

DEFAULT_REGION = "us-east-1"

_lock = threading.Lock()
_cache: dict[tuple[str, str | None, str], Any] = {}


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint_url(service: str) -> str | None:
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def client(service: str, *, region_name: str | None = None, fresh: bool = False) -> Any:
    """A cached boto3 client honouring the endpoint and region environment.

    Clients are thread-safe; the cache key includes the endpoint so tests that
    switch ``AWS_ENDPOINT_URL`` get a new client.
    """
    import boto3
    from botocore.config import Config

    reg = region_name or region()
    url = endpoint_url(service)
    key = (service, url, reg)
    with _lock:
        if not fresh and key in _cache:
            return _cache[key]
        cfg = Config(
            region_name=reg,
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 4, "mode": "standard"},
            s3={"addressing_style": "path"} if url else None,
            signature_version="s3v4" if service == "s3" else None,
        )
        made = boto3.session.Session().client(service, region_name=reg, endpoint_url=url,
                                               config=cfg)
        _cache[key] = made
        return made


def clear_cache() -> None:
    with _lock:
        _cache.clear()
