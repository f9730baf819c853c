"""manage.py import_profiles: exit codes, the counts as the last line, the report file."""

import json

import pytest
from django.core.management import CommandError, call_command

from profiles.models import Profile

from .conftest import MAPPING
from .test_import_run import CSV


@pytest.fixture
def files(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    data = tmp_path / "people.csv"
    data.write_bytes(CSV.encode("cp1250"))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    return data, mapping, tmp_path


def test_imports_and_prints_the_counts_last(files, capsys, db):
    data, mapping, tmp = files
    call_command("import_profiles", str(data), "--mapping", str(mapping), "--report", str(tmp / "report.csv"))
    out = capsys.readouterr().out.strip().splitlines()
    assert "created 2" in out[-1] and "failed 1" in out[-1]
    assert Profile.objects.count() == 2
    report = (tmp / "report.csv").read_text().splitlines()
    assert report[0] == "line,kind,code,field,message,original" and report[1].startswith("4,error,email.invalid")


def test_dry_run_writes_nothing(files, capsys, db):
    data, mapping, _ = files
    call_command("import_profiles", str(data), "--mapping", str(mapping), "--dry-run")
    assert "dry run" in capsys.readouterr().out.splitlines()[-1]
    assert not Profile.objects.exists()


def test_unusable_mapping_or_file_exits_non_zero(files, db, tmp_path):
    data, mapping, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"columns": {"E-mail": {"to": "nickname"}}}))
    with pytest.raises(CommandError) as caught:
        call_command("import_profiles", str(data), "--mapping", str(bad))
    assert caught.value.returncode == 2 and "nickname" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        call_command("import_profiles", str(tmp_path / "missing.csv"), "--mapping", str(mapping))
    assert caught.value.returncode == 2
    xml = tmp_path / "x.xml"
    from .test_readers import BILLION_LAUGHS

    xml.write_bytes(BILLION_LAUGHS)
    xml_mapping = tmp_path / "xm.json"
    xml_mapping.write_text(json.dumps({"columns": {"email": {"to": "email"}}, "record": "customer"}))
    with pytest.raises(CommandError) as caught:
        call_command("import_profiles", str(xml), "--mapping", str(xml_mapping))
    assert caught.value.returncode == 2
    assert not Profile.objects.exists()


def test_explicit_encoding_and_delimiter(files, capsys, db):
    data, mapping, _ = files
    call_command("import_profiles", str(data), "--mapping", str(mapping), "--encoding", "cp1250", "--delimiter", ";")
    assert "created 2" in capsys.readouterr().out.splitlines()[-1]


def test_abandoned_wizard_uploads_are_purged(settings, tmp_path):
    import os
    import time as clock

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from imports.services import drafts_purge

    settings.MEDIA_ROOT = tmp_path / "media"
    old = default_storage.save("imports/drafts/a/old.csv", ContentFile(b"x"))
    new = default_storage.save("imports/drafts/b/new.csv", ContentFile(b"y"))
    two_days_ago = clock.time() - 2 * 86400
    os.utime(default_storage.path(old), (two_days_ago, two_days_ago))
    assert drafts_purge() == 1
    assert not default_storage.exists(old) and default_storage.exists(new)
