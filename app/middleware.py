"""The outermost layer of the application: request id, access log line, request metrics.

Pure ASGI (no ``BaseHTTPMiddleware``: no extra task per request, streaming untouched).
It wraps the *whole* middleware stack, outside Starlette's ``ServerErrorMiddleware``, so
that a 500 produced there and a 413 produced by the body limit also carry the
``X-Request-ID`` header and are counted; ``install_request_middleware`` does the wrapping.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging_setup import install_request_id_on_records, request_id_var
from app.metrics import observe_request

access_log = logging.getLogger("kizuna.access")

REQUEST_ID_HEADER = b"x-request-id"
# What we accept from a client or a proxy: the ids load balancers and tracers send (UUIDs,
# hex trace ids, "Root=1-…" style), bounded, with no spaces, quotes or control characters
# that could forge log lines or headers. Anything else is replaced, not trusted.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:+=@/-]{1,128}$")

UNMATCHED_ROUTE = "<unmatched>"


def accept_request_id(raw: bytes | None) -> str:
    """The client's id if it is sane, else a new random one."""
    if raw:
        try:
            candidate = raw.decode("ascii")
        except UnicodeDecodeError:
            candidate = ""
        if _REQUEST_ID.match(candidate):
            return candidate
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = accept_request_id(_header(scope, REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # if the app dies before answering, that is what the client sees
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER]
                headers.append(id_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            method = scope.get("method", "")
            route = self.route_of(scope)
            observe_request(method, route, status, duration)
            access_log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(duration * 1000, 2)},
            )
            request_id_var.reset(token)


def _leaf_routes(routes: Iterable[object]) -> Iterator[BaseRoute]:
    """Every endpoint route, looking inside included routers and mounts."""
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if isinstance(route, BaseRoute) and isinstance(getattr(route, "path", None), str) and not hasattr(
            route, "original_router"
        ):
            yield route
        elif inner is not None and hasattr(inner, "routes"):
            yield from _leaf_routes(inner.routes)


def route_template_finder(app: FastAPI) -> Callable[[Scope], str]:
    """The route template of a request: the router leaves the matched route in the scope;
    requests answered before routing (413 from the body limit) are matched here."""
    leaves: list[BaseRoute] = []

    def route_of(scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            if not leaves:  # routes are fixed once the app serves; collect them on first use
                leaves.extend(_leaf_routes(app.router.routes))
            probe = {**scope, "type": "http"}
            route = next((leaf for leaf in leaves if leaf.matches(probe)[0] is Match.FULL), None)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE

    return route_of


def install_request_middleware(app: FastAPI) -> None:
    """Wrap the complete middleware stack (see the module docstring for why not add_middleware)."""
    install_request_id_on_records()
    build_stack = app.build_middleware_stack
    route_of = route_template_finder(app)

    def build_wrapped_stack() -> ASGIApp:
        return RequestContextMiddleware(build_stack(), route_of)

    app.build_middleware_stack = build_wrapped_stack  # type: ignore[method-assign]
