"""Validate httpx requests against the vendored Intercom 2.16 OpenAPI description.

The spec is loaded once per test session. PyYAML's safe loaders read a bare ``=`` scalar
as the YAML 1.1 "value" type and fail, so a string constructor is registered for it
(see /work/shared/vendor-apis/README.md). ``VALIDATED`` counts requests that passed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


def _spec_path() -> Path:
    """``HANDOFF_INTERCOM_SPEC``, else ``../shared/vendor-apis/`` beside the repository."""
    if os.environ.get("HANDOFF_INTERCOM_SPEC"):
        return Path(os.environ["HANDOFF_INTERCOM_SPEC"])
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "vendor-apis" / "intercom-2.16.yaml"


SPEC_PATH = _spec_path()
SPEC_HOST = "https://api.intercom.io"

VALIDATED = 0


class _Loader(yaml.CSafeLoader):
    """A private subclass, so the extra constructor does not leak into other code."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


@functools.cache
def spec() -> OpenAPI:
    with SPEC_PATH.open("rb") as fh:
        data = yaml.load(fh, Loader=_Loader)  # a CSafeLoader subclass
    # Whole-spec validation is skipped: the file has two known errors (an undeclared
    # ``job_identifier`` path parameter) in operations we never call; requests are still
    # validated against every operation we use.
    return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))


class _Request:
    """openapi-core's Request protocol over an ``httpx.Request``."""

    def __init__(self, request: httpx.Request, base_url: str | None) -> None:
        url = request.url
        path = url.path
        if base_url is not None:
            prefix = httpx.URL(base_url).path.rstrip("/")
            assert path.startswith(prefix), (path, base_url)
            path = path[len(prefix) :] or "/"
        self.host_url = SPEC_HOST
        self.path = path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("Content-Type", "application/json").lower()
        query = parse_qs(url.query.decode(), keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs]),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


def validate(request: httpx.Request, *, base_url: str | None = None) -> None:
    """Raise if ``request`` does not conform to the spec; count it if it does.

    ``base_url`` is the connector's base URL, whose path prefix (for example ``/intercom``
    on the sandbox) is stripped so the path matches the spec's servers.
    """
    global VALIDATED
    spec().validate_request(_Request(request, base_url))
    VALIDATED += 1


def check_headers(request: httpx.Request, version: str = "2.16") -> dict[str, Any]:
    """The headers every Intercom call must carry; returns the JSON body for convenience."""
    assert request.headers["Intercom-Version"] == version
    assert request.headers["Authorization"].startswith("Bearer ")
    import json

    return json.loads(request.content) if request.content else {}
