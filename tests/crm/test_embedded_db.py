"""The embedded server's start survives the library's process list left half-written by a killed process."""

import json

from crm.embedded_db import pid_list_repair


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
