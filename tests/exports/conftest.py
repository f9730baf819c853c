import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.exports.sftp_server import SftpTestServer


class Receiver:
    """A local HTTP endpoint that keeps what it is sent and answers with ``status``."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"received": len(body)}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/profiles?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sftp_server(tmp_path):
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = SftpTestServer(root)
    yield server
    server.close()


@pytest.fixture
def local_targets(settings, tmp_path):
    settings.EXPORT_ALLOW_PRIVATE_TARGETS = True
    settings.EXPORT_SPOOL_DIR = str(tmp_path / "spool")
