"""A TCP proxy on 127.0.0.1 that can hold one request: tests stop a client at a known point
(e.g. the first HTTP request that names a file) while the server behind stays real."""

from __future__ import annotations

import contextlib
import socket
import threading


class HoldingProxy:
    """Forwards every connection to ``127.0.0.1:target_port``. The first time data from a
    client contains ``hold_on``, that data is held (``held`` is set) until :meth:`release`;
    everything else passes at once."""

    def __init__(self, target_port: int, hold_on: bytes) -> None:
        self.target_port = target_port
        self.hold_on = hold_on
        self.held = threading.Event()
        self._released = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        tail = b""
        try:
            while data := source.recv(1 << 16):
                if watch and not self.held.is_set() and self.hold_on in tail + data:
                    self.held.set()
                    self._released.wait()
                tail = data[-len(self.hold_on) :]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
