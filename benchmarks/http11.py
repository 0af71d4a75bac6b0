"""The load generator's HTTP client: one keep-alive HTTP/1.1 connection with a cookie jar."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Response:
    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, with a cookie jar: just what a simulated
    reader needs. A full client library (httpx) spends about a millisecond of the machine's two
    cores per request, which the server, sharing them here, would otherwise be charged for."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.port, self.timeout = port, timeout
        self.cookies: dict[str, str] = {}
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: Any = None) -> Response:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(method, path, body)
        except BaseException:
            self.close()  # a half-read response must not be taken for the next one's
            raise

    async def _exchange(self, method: str, path: str, body: Any) -> Response:
        if self.streams is not None and self.streams[0].at_eof():
            self.close()  # the server closed it while idle (its keep-alive timeout is 5 s)
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in filter(None, lines[1:]):
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
            headers[name] = value
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ValueError(f"a chunked response to {method} {path}: not expected here")
        content = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, content)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None
