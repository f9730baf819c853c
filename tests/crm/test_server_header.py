"""The documented deployment (gunicorn with gunicorn.conf.py) answers without a ``Server`` header: a real gunicorn,
started on a free port, with each worker class the configuration offers."""

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_answer(port: int, process: subprocess.Popen) -> http.client.HTTPResponse:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("HEAD", "/admin/login/", headers={"Host": "localhost"})
            return connection.getresponse()
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_gunicorn_sends_no_server_header(worker_class):
    port = free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_WORKER_CLASS": worker_class,
        "DEBUG": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "crm.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer = first_answer(port, process)
        headers = {name.lower(): value for name, value in answer.getheaders()}
        assert answer.status > 0 and "date" in headers
        assert "server" not in headers, headers["server"]
    finally:
        process.terminate()
        process.wait(timeout=30)
