"""A TCP proxy between edgecomp and a simulated board's sshd that breaks the link on cue.

It forwards bytes both ways and can: cut every connection now (reset), cut once a
number of bytes more has gone towards the board (in the middle of an upload), freeze
(keep the sockets open but pass nothing, as a dead Wi-Fi link or a stuck switch does),
slow the link to a byte rate, and refuse new connections. Written for the tests because
the faults must land at exact moments of a real SSH session: a tool such as toxiproxy
would be another server to install and drive over HTTP for the same five behaviours.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time


class FaultProxy:
    """Listen on 127.0.0.1 (`port`) and forward to 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.frozen = False
        self.refusing = False
        self.rate: float | None = None  # bytes per second each way, None: full speed
        self.sent_up = 0  # bytes forwarded towards the board, all connections
        self.connections = 0
        self._cut_at: int | None = None
        self._then_refuse = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- faults --------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every open connection now."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _reset(sock)

    def cut_after(self, count: int, *, then_refuse: bool = False) -> None:
        """Reset the connections once `count` more bytes have gone towards the board; with
        `then_refuse`, refuse new connections from then on (the board is gone)."""
        with self._lock:
            self._cut_at = self.sent_up + count
            self._then_refuse = then_refuse

    def freeze(self) -> None:
        """Pass nothing either way from now on; the connections stay open."""
        self.frozen = True

    def slow(self, bytes_per_s: float | None) -> None:
        self.rate = bytes_per_s

    def refuse(self, refusing: bool = True) -> None:
        """Reset new connections as they arrive (the board's sshd is gone)."""
        self.refusing = refusing

    def heal(self) -> None:
        self.frozen = self.refusing = False
        self.rate = self._cut_at = None

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()

    # -- forwarding ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port),
                                                    timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        while True:
            if self.frozen:  # read nothing: the sender's buffers fill and it stalls
                time.sleep(0.05)
                if source.fileno() < 0:
                    return
                continue
            try:
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable:
                    continue
                if self.frozen:
                    continue
                data = source.recv(16384)
            except (OSError, ValueError):
                _reset(sink)
                return
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if up:
                with self._lock:
                    self.sent_up += len(data)
                    cut = self._cut_at is not None and self.sent_up >= self._cut_at
                if cut:
                    self._cut_at = None
                    self.refusing = self.refusing or self._then_refuse
                    self.cut()
                    return
            if self.rate:
                time.sleep(len(data) / self.rate)
            try:
                sink.sendall(data)
            except OSError:
                _reset(source)
                return


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a broken link or a dead host looks."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
