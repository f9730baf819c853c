"""The webhook delivery worker: its own process, so a long import or batch never delays a delivery.

Threads claim and deliver due messages (``webhooks.delivery.deliver_due``); one more LISTENs on the
outbox's channel, so a commit that wrote messages wakes them at once, and each idle thread looks again
at least every ``--idle`` seconds (retries coming due, a lost notification).
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection, connections

from crm.metrics import metrics_port_serve, metrics_sampler_start
from crm.startup import startup_objects_freeze
from webhooks.delivery import batch_size, connection_pool, deliver_due, next_due_in
from webhooks.services import NOTIFY_CHANNEL

logger = logging.getLogger("webhooks.worker")
BUSY_RETRY_SECONDS = 0.05


class Wakeup:
    """A generation counter: a thread that saw no work sleeps only if nothing was notified since it looked."""

    def __init__(self):
        self._cond = threading.Condition()
        self.generation = 0

    def notify(self):
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self.generation == seen:
                self._cond.wait(timeout)


class Command(BaseCommand):
    help = "Deliver webhook messages from the outbox (runs until stopped)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="claiming threads, each with its own database connection (default WEBHOOK_WORKER_CONCURRENCY)",
        )
        parser.add_argument(
            "--batch", type=int, default=None, help="messages a thread claims at once (default WEBHOOK_WORKER_BATCH)"
        )
        parser.add_argument("--idle", type=float, default=1.0, help="longest sleep when idle, in seconds")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=0,
            help="serve this process's metrics on this port, on loopback (without PROMETHEUS_MULTIPROC_DIR)",
        )

    def handle(self, *args, threads, batch, idle, metrics_port, **options):
        threads = threads or settings.WEBHOOK_WORKER_CONCURRENCY
        batch = batch or batch_size()
        self.stop = threading.Event()
        self.wakeup = Wakeup()
        startup_objects_freeze()
        metrics_sampler_start()
        if metrics_port:
            metrics_port_serve(metrics_port)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop())
        listener = threading.Thread(target=self._listen, name="webhook-listen", daemon=True)
        listener.start()
        workers = [
            threading.Thread(target=self._work, args=(batch, idle), name=f"webhook-worker-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for worker in workers:
            worker.start()
        self.stdout.write(
            f"Webhook worker: {len(workers)} threads claiming {batch} messages at a time, listening on {NOTIFY_CHANNEL}"
        )
        self.stdout.flush()
        while not self.stop.wait(0.5):
            pass
        for worker in workers:
            worker.join(timeout=20)
        connection_pool().close_all()

    def _stop(self):
        self.stop.set()
        self.wakeup.notify()

    def _listen(self):
        while not self.stop.is_set():
            try:
                connection.ensure_connection()
                raw = connection.connection
                raw.autocommit = True
                raw.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not self.stop.is_set():
                    for _ in raw.notifies(timeout=0.5, stop_after=1):
                        self.wakeup.notify()
            except Exception:
                logger.exception("Webhook listener lost its connection; reconnecting")
                connections.close_all()
                self.stop.wait(1)

    def _work(self, batch: int, idle: float):
        while not self.stop.is_set():
            seen = self.wakeup.generation
            try:
                close_old_connections()
                done = deliver_due(limit=batch)
                if done >= batch:
                    self.wakeup.notify()  # more is due: let idle siblings help
                    continue
                if done:
                    continue  # this thread claims again at once: what waited behind its messages is claimable
                due = next_due_in()
                # Due but not claimable (a sibling holds it while it sends, or it waits behind an older message of
                # its profile): look again shortly rather than spinning.
                timeout = idle if due is None else min(idle, max(due, BUSY_RETRY_SECONDS))
            except Exception:
                logger.exception("Webhook delivery pass failed")
                connection.close()
                timeout = idle
            if timeout > 0:
                self.wakeup.wait(seen, timeout)
        connection.close()
