"""What a long-running process does once Django is loaded: ``startup_objects_freeze``.

Everything a web or worker process has built by then (settings, apps, models, the URL configuration and the
views it imports) lives as long as the process. Python's cyclic garbage collector would walk all of it, some
120,000 objects, on every full collection, and the requests and batches that allocate the most pay for that most
often. ``gc.freeze()`` moves those objects to the permanent generation, so collections walk only what came after.
The frozen objects are never collected, which costs nothing for objects that live as long as the process.
"""

from __future__ import annotations

import gc


def startup_objects_freeze() -> None:
    """Load the URL configuration (its views, serializers and their imports), then freeze what is alive."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module it names
    gc.collect()
    gc.freeze()
