"""Loopback networking for tests and benches: free ports, and a TCP proxy to cut one client off.

Test-only code: it lives here, not in the shipped ``oneeye`` package.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from oneeye.errors import BrokerError
from oneeye.local.broker import check_port_free


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it: bind to port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    """A TCP forwarder ``127.0.0.1:port`` → ``target``, so one client's network can be cut.

    ``stop()`` closes the listener and every forwarded connection (the client sees
    its connection drop and reconnects fail, exactly as on a network cut) while
    the broker and everyone else stay up; ``start()`` restores the path. The outage
    bench uses it to order reconnects when the broker itself restarts without
    persistence (amqtt forgets subscriptions, so the subscriber must be back first).
    """

    def __init__(self, target_port: int, port: int, host: str = "127.0.0.1") -> None:
        self.target_port = target_port
        self.port = port
        self.host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        if self._thread is not None:
            return self
        check_port_free(self.host, self.port)
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise BrokerError(f"proxy on port {self.port} did not start")
        return self

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        writers: set[asyncio.StreamWriter] = set()
        handlers: set[asyncio.Task[Any]] = set()

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                handlers.add(task)
            try:
                ur, uw = await asyncio.open_connection(self.host, self.target_port)
            except OSError:
                w.close()
                return
            writers.update((w, uw))
            await asyncio.gather(pipe(r, uw), pipe(ur, w))
            writers.difference_update((w, uw))

        server = await asyncio.start_server(handle, self.host, self.port, reuse_address=True)
        ready.set()
        await self._stopped.wait()
        server.close()
        for w in list(writers):
            w.transport.abort()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 5)
        await server.wait_closed()

    def stop(self) -> None:
        thread, loop, stopped = self._thread, self._loop, self._stopped
        if thread is None or loop is None or stopped is None:
            return
        loop.call_soon_threadsafe(stopped.set)
        thread.join(10)
        self._thread = None
