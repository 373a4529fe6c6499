"""Validate incoming Intercom requests against the vendor's OpenAPI description.

The spec is loaded once per path per process (1.3 MB of YAML takes about half a
second with libyaml). Requests arrive under ``/intercom``; the prefix is removed and
the request is presented as if sent to ``https://api.intercom.io``, the spec's server.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters

log = logging.getLogger(__name__)
SERVER = "https://api.intercom.io"


class _SpecLoader(yaml.CSafeLoader):
    """CSafeLoader that reads a bare ``=`` as the string it is (not YAML 1.1 'value')."""


_SpecLoader.add_constructor(
    "tag:yaml.org,2002:value",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


class _Request:
    """The request protocol openapi-core reads, for an aiohttp request with its body read."""

    def __init__(self, request: web.Request, path: str, body: bytes | None) -> None:
        self.host_url = SERVER
        self.path = path
        self.method = request.method.lower()
        self.body = body or None
        self.content_type = request.content_type if body else "application/json"
        self.parameters = RequestParameters(
            query=request.query, header=request.headers, cookie=request.cookies
        )


class IntercomValidator:
    def __init__(self, spec: dict[str, Any]) -> None:
        # The file has two known errors outside our operations (see the vendor README),
        # so the spec itself is not validated, only requests against it.
        self._openapi = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))

    def check(self, request: web.Request, path: str, body: bytes | None) -> str | None:
        """None when the request fits the spec, else a one-line reason."""
        try:
            self._openapi.validate_request(_Request(request, path, body))
        except Exception as exc:  # openapi-core raises a family of unrelated types
            return _reason(exc)
        return None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if details:
        return "; ".join(str(getattr(e, "message", e)) for e in details)
    if cause is not None:
        return f"{exc}: {cause}"
    return str(exc)


@functools.lru_cache(maxsize=4)
def load_validator(path: Path) -> IntercomValidator | None:
    """The validator for the spec at ``path``, or None (with one warning) if it is absent."""
    if not path.is_file():
        log.warning("intercom spec not found at %s; Intercom request validation is off", path)
        return None
    with path.open("rb") as f:
        spec = yaml.load(f, Loader=_SpecLoader)
    return IntercomValidator(spec)


def default_spec_path() -> Path:
    """``../shared/vendor-apis/intercom-2.16.yaml`` relative to the repository root."""
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "vendor-apis" / "intercom-2.16.yaml"
