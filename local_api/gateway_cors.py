"""What the HTTP API's ``CorsConfiguration`` makes API Gateway do, done by the local API from template.yaml.

AWS documents three things (API Gateway developer guide, "Configure CORS for HTTP APIs"): with CORS
configured, API Gateway answers preflight requests itself (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``), adds the configured headers to the response of a CORS request (one that
carries ``Origin``), and ignores the CORS headers the integration returns. The local API does the same with
the template's own ``CorsConfiguration`` (its origins from the ``CorsAllowedOrigins`` parameter, as
``CORS_ALLOWED_ORIGINS`` sets it for ``make run``), so a browser meets the same headers on ``make run``
as on a deployed stack, for the function's answers and for the ones the server makes itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class GatewayCors:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None = None

    @classmethod
    def from_stack(cls, stack: Any) -> GatewayCors:
        """The ``CorsConfiguration`` of the template's one ``AWS::ApiGatewayV2::Api``, resolved."""
        (api,) = stack.of_type("AWS::ApiGatewayV2::Api")
        config = stack.properties(api)["CorsConfiguration"]
        return cls(
            allow_origins=tuple(str(o).rstrip("/") for o in config.get("AllowOrigins", [])),
            allow_methods=tuple(config.get("AllowMethods", [])),
            allow_headers=tuple(config.get("AllowHeaders", [])),
            expose_headers=tuple(config.get("ExposeHeaders", [])),
            max_age=int(config["MaxAge"]) if "MaxAge" in config else None,
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None when it is not allowed."""
        if not origin:
            return None
        if "*" in self.allow_origins:
            return "*"
        return origin if origin.rstrip("/") in self.allow_origins else None

    @staticmethod
    def is_preflight(method: str, headers: Iterable[tuple[str, str]]) -> bool:
        names = {name.lower() for name, _ in headers}
        return method == "OPTIONS" and {"origin", "access-control-request-method"} <= names

    def preflight(self, origin: str | None) -> Headers:
        """The headers of API Gateway's own 204 to a preflight (none of them for an origin not allowed)."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return self._vary()
        headers = [("Access-Control-Allow-Origin", allowed)]
        headers.append(("Access-Control-Allow-Methods", ", ".join(self.allow_methods)))
        headers.append(("Access-Control-Allow-Headers", ", ".join(self.allow_headers)))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return headers + self._vary()

    def response(self, origin: str | None, headers: Headers) -> Headers:
        """``headers`` of a response as API Gateway passes it on: the integration's ``Access-Control-*``
        dropped, the configured ones added for an allowed origin."""
        kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            kept.append(("Access-Control-Allow-Origin", allowed))
            if self.expose_headers:
                kept.append(("Access-Control-Expose-Headers", ", ".join(self.expose_headers)))
        if not any(name.lower() == "vary" for name, _ in kept):
            kept.extend(self._vary())
        return kept

    def _vary(self) -> Headers:
        # With a list of origins the answer depends on the request's Origin: caches must know.
        return [] if "*" in self.allow_origins else [("Vary", "Origin")]
