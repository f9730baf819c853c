import io
import json

import pytest

from imports.services import import_create, import_run

MAPPING = {
    "columns": {
        "E-mail": {"to": "email"},
        "First name": {"to": "firstName", "transform": ["trim", "title"]},
        "Born": {"to": "birthDate", "dateFormat": "%d.%m.%Y"},
        "Newsletter": {"to": "agreements.email", "map": {"Y": True, "N": False}},
        "Groups": {"to": "tags", "split": "|"},
        "Points": {"to": "attributes.loyaltyPoints", "type": "number"},
        "Old column": {"skip": True},
    },
    "constants": {"attributes.importSource": "crm-2026"},
}


@pytest.fixture
def run_import(db, settings, tmp_path):
    """Create and run an import of ``content`` (bytes or str) in this process; returns the finished ImportJob."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def run(content, *, mapping=None, name="file.csv", **kwargs):
        data = content.encode() if isinstance(content, str) else content
        imp = import_create(
            file=io.BytesIO(data), name=name, mapping=mapping or MAPPING, source="tests", actor="system", **kwargs
        )
        return import_run(job_id=imp.pk)

    return run


def jsonl(*records) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"
