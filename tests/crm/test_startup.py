"""A web worker freezes what Django loaded (crm/startup.py): the cyclic GC no longer walks it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
before = gc.get_freeze_count()
import crm.wsgi
print(before, gc.get_freeze_count(), len(gc.get_objects(generation=2)))
"""


def test_the_wsgi_module_freezes_what_django_loaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    before, frozen, oldest = map(int, done.stdout.split())
    assert before == 0
    # Django, the apps, the URL configuration and its views: far more than a bare interpreter has.
    assert frozen > 50_000, frozen
    # What the collector still walks in its oldest generation is what came after the freeze: almost nothing.
    assert oldest < frozen // 10, (oldest, frozen)
