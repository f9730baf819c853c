"""JSON log lines carry the request id; gunicorn's configuration file loads."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from crm.logs import JsonFormatter
from crm.request_id import RequestIdLogFilter, request_id_scope

ROOT = Path(__file__).resolve().parents[2]


def test_a_json_line_has_the_request_id_extra_fields_and_the_exception():
    record = logging.LogRecord("crm.test", logging.ERROR, __file__, 1, "job %s failed", ("j-1",), None)
    record.job = "j-1"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    with request_id_scope("req-42"):
        RequestIdLogFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"], line["request_id"], line["job"]) == (
        "ERROR",
        "crm.test",
        "job j-1 failed",
        "req-42",
        "j-1",
    )
    assert "ValueError: boom" in line["exception"]


def test_production_logs_are_json_by_default():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "0", "LOG_FORMAT": ""}
    code = "import django; django.setup(); import logging; logging.getLogger('crm.x').warning('hello')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert {"logger": "crm.x", "message": "hello", "request_id": "-"}.items() <= lines[-1].items()


def test_under_debug_a_django_line_is_printed_once():
    """Django's defaults give its loggers a bare console handler under DEBUG; with ours beside it, the task
    worker's lines came out twice."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "1", "LOG_FORMAT": "plain"}
    code = "import django; django.setup(); import logging; logging.getLogger('django.tasks').info('task ran')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    printed = [line for line in (done.stdout + done.stderr).splitlines() if "task ran" in line]
    assert len(printed) == 1, printed
    assert "INFO django.tasks" in printed[0]


def test_the_gunicorn_configuration_loads():
    env = {**os.environ, "WEB_CONCURRENCY": "3", "GUNICORN_BIND": "127.0.0.1:8123"}
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "crm.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config = {
        k.strip(): v.strip() for k, v in (line.split(" = ", 1) for line in done.stdout.splitlines() if " = " in line)
    }
    assert config["workers"].strip() == "3" and "127.0.0.1:8123" in config["bind"]
    assert "x-request-id" in config["access_log_format"] and config["accesslog"] == "None"
