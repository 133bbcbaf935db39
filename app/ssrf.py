"""Server-side request forgery guard for outgoing webhook calls.

A webhook URL is chosen by an API client, and the service then makes requests to it from
inside the network: without a guard, ``http://169.254.169.254/…`` (cloud metadata) or
``http://10.0.0.5:5432`` become reachable to anyone holding an admin key. So:

- only ``http`` and ``https`` URLs with a host are accepted;
- the host must resolve only to public (globally routable, unicast) addresses, checked when
  the endpoint is registered *and* at every delivery, since DNS answers can change;
- at delivery the connection goes to the very address that was checked (``GuardedBackend``
  resolves, checks and connects in one step), so a DNS answer that changes between the
  check and the connect ("DNS rebinding") cannot slip through;
- redirects are not followed, and proxies from the environment are not used.

``KIZUNA_WEBHOOK_ALLOW_PRIVATE=true`` turns the address check off (local development, a
receiver inside the same private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOWED_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL or the addresses its host resolves to are not allowed."""


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address may not be called, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge the IPv4 one.
        if address.ipv4_mapped is not None:
            return forbidden_reason(address.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
        if address.sixtofour is not None:
            return forbidden_reason(address.sixtofour)  # 2002:7f00:1::1 is 127.0.0.1
        if address.teredo is not None:
            return forbidden_reason(address.teredo[1])  # the client address inside Teredo
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, …
        return "not globally routable"
    return None


def split_http_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or DestinationRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DestinationRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses a host name resolves to (a literal address resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"the host {host!r} does not resolve") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """The host's addresses, refusing the host if *any* of them is not public (an attacker
    controlling DNS could otherwise mix one public and one internal answer)."""
    addresses = await resolve(host, port)
    if not addresses:
        raise DestinationRefused(f"the host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise DestinationRefused(f"the host resolves to a {reason} address, which webhooks may not call")
    return addresses


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Registration-time check of a webhook URL."""
    _scheme, host, port = split_http_url(url)
    await checked_addresses(host, port, allow_private=allow_private)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking the host itself and connecting
    to a checked address; TLS still verifies the certificate against the host *name*."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(host, port, allow_private=self.allow_private)
        except DestinationRefused as exc:
            raise httpcore.ConnectError(f"refused: {exc}") from exc
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: unix sockets are not a webhook destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(*, allow_private: bool) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through ``GuardedBackend``. httpx does not
    take a network backend as an argument, so the connection pool it built is replaced by
    an equivalent one that uses the guard (the pool is the transport's only state)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=20,
        max_keepalive_connections=10,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(allow_private=allow_private),
    )
    return transport
