import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
application = get_wsgi_application()

from crm.startup import startup_objects_freeze  # noqa: E402 - after Django is set up

startup_objects_freeze()  # each worker imports this module after the fork (gunicorn.conf.py: not preloaded)
