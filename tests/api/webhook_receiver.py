"""A real HTTP receiver on 127.0.0.1 for webhook tests: an asyncio server that records each
request and answers with scripted statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each request with the next scripted status (the last one repeats)."""

    statuses: list[int]
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    got_one: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/kizuna"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(headers, body))
            status = self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)]
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
            self.got_one.set()
        finally:
            writer.close()


@pytest.fixture
async def receiver_factory() -> AsyncIterator:  # type: ignore[type-arg]
    servers: list[asyncio.base_events.Server] = []

    async def start(*statuses: int) -> Receiver:
        receiver = Receiver(list(statuses) or [204])
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
        receiver.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


