"""JSON log lines: one object per line with the time, level, logger, message and the request id.

Chosen with ``LOG_FORMAT=json`` (the default without ``DEBUG``); ``plain`` prints the same fields as text.
The request id comes from ``crm.request_id.RequestIdLogFilter`` (the request's ``X-Request-ID``, or the id
a worker runs a job under), so a request's lines and its background work can be found together.
"""

import json
import logging
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "process": record.process,
        }
        # Extra fields passed with logger.info(..., extra={...}) come along.
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
