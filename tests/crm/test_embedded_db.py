"""The embedded server's start survives the library's process list left half-written by a killed process, and a
process's exit no longer touches that list."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from crm.embedded_db import embedded_database_stop, pid_list_repair

ROOT = Path(__file__).resolve().parents[2]


def test_an_unreadable_process_list_is_reset_and_a_good_one_kept(tmp_path):
    path = tmp_path / ".handle_pids.json"
    assert pid_list_repair(tmp_path) is False  # no list yet: nothing to do
    for broken in ("", "[12, 3", "{}", '["x"]'):
        path.write_text(broken)
        assert pid_list_repair(tmp_path) is True, broken
        assert json.loads(path.read_text()) == []
    path.write_text("[12, 34]")
    assert pid_list_repair(tmp_path) is False
    assert json.loads(path.read_text()) == [12, 34]


def test_a_process_leaves_the_list_alone_at_exit():
    """Each process used to rewrite the list at exit; Ctrl-C on make run stopped one in the middle and the others
    printed a JSON traceback each. Now a process is off the list once started and writes nothing at exit: even a
    list cut short meanwhile gives no traceback."""
    data_dir = Path(tempfile.mkdtemp(prefix="crm-pid-list-"))  # outside pytest's folder, which it makes private
    script = (
        "import sys; from pathlib import Path; from crm.embedded_db import embedded_database_settings\n"
        "data_dir = Path(sys.argv[1]); embedded_database_settings(data_dir)\n"
        "pids = (data_dir / 'postgres' / '.handle_pids.json')\n"
        "print(pids.read_text()); pids.write_text('[12, 3')\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []  # taken off the list as soon as the server was there
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    finally:
        embedded_database_stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
