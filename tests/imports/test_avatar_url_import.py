"""An import refuses a private avatarUrl on its line, naming the field, and imports the other lines."""

import csv
import io

from imports.services import import_report_csv
from profiles.models import Profile


def test_a_private_avatar_url_fails_its_line(run_import):
    content = "email,avatar\nann@example.com,https://img.example.com/a.png\nbob@example.com,http://127.0.0.1/x.png\n"
    imp = run_import(content, mapping={"columns": {"email": {"to": "email"}, "avatar": {"to": "avatarUrl"}}})
    assert imp.job.counts["failed"] == 1 and imp.job.counts["created"] == 1
    (row,) = csv.DictReader(io.StringIO("".join(import_report_csv(imp=imp))))
    assert row["line"] == "3" and row["field"] == "avatarUrl"
    assert list(Profile.objects.values_list("email", flat=True)) == ["ann@example.com"]
