"""Fixtures of the webhook tests: a receiver on loopback that records what it gets and answers as told."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks.delivery import connection_pool
from webhooks.models import EventType
from webhooks.services import subscription_create


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    status: int = 0
    client_port: int = 0  # the sender's side of the TCP connection: one port, one connection

    @property
    def json(self):
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # a pass opens up to WEBHOOK_HTTP_THREADS connections at once


class Receiver:
    """A local HTTP/1.1 server keeping connections open: ``answers`` are the status codes of the next requests
    (then ``default``); ``hang_up`` closes each connection after its answer without saying so (as a server
    whose idle timeout ran out)."""

    def __init__(self):
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.default = 200
        self.delay = 0.0
        self.gate: threading.Event | None = None  # when set: each answer waits until the gate opens
        self.answered: list | None = None  # when set: (self, webhook-id) appended as each answer goes out
        self.hang_up = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 64 * 1024  # the answer in one segment

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:  # the sender died mid-request (a killed worker): nothing accepted, no answer
                    self.close_connection = True
                    return
                body = raw.decode()
                with receiver.lock:
                    status = receiver.answers.popleft() if receiver.answers else receiver.default
                    receiver.requests.append(
                        Received(self.path, dict(self.headers), body, status, self.client_address[1])
                    )
                if receiver.hang_up:
                    self.close_connection = True
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.gate is not None:
                    receiver.gate.wait(60)
                if receiver.answered is not None:
                    receiver.answered.append((receiver, self.headers.get("webhook-id")))
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                payload = f"answer {status}".encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    return settings


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    connection_pool().close_all()  # no kept connection outlives its test
    server.close()


@pytest.fixture
def subscribe(allow_private, receiver):
    """A subscription to the loopback receiver (private targets allowed); returns (subscription, secret)."""

    def make(events=None, **kwargs):
        return subscription_create(
            url=kwargs.pop("url", receiver.url), events=events or list(EventType.values), **kwargs
        )

    return make
