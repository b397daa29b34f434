"""The site's WSGI callable, `application`: served natively by cheroot
(`cheroot django_site.wsgi:application`) and as a component
(`cheroot-wasm build-python django_site.wsgi:application`).

A component built by `build-python` is a snapshot of the interpreter taken after this
module was imported, at build time, with the project's files at hand. At request time it
has no files but the directories its route grants (here the `data` directory with the
database), and the route's `env`. So, besides Django's usual `get_wsgi_application()`:

* the templates (the site's and Django's form widgets') are compiled now, into Django's
  cached template loader (the one it uses when DEBUG is off);
* the app's migrations are read now; the database is created or migrated by Django's own
  `migrate` at the first request, when the data directory exists;
* the settings read from the environment (settings.from_environment) are read again at the
  first request.

Served natively all of this changes nothing: the files are there anyway.
"""

import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.commands import migrate  # noqa: E402
from django.db.migrations.loader import MigrationLoader  # noqa: E402
from django.template import engines  # noqa: E402
from django.template.utils import get_app_template_dirs  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_site import settings as site_settings  # noqa: E402
from guestbook.forms import EntryForm  # noqa: E402


def _compile_templates():
    django_templates = engines["django"]
    for directory in get_app_template_dirs("templates"):
        for path in sorted(directory.rglob("*.html")):
            django_templates.get_template(path.relative_to(directory).as_posix())
    # A bound form with an error renders the widget, label and error-list templates.
    str(EntryForm({"text": ""}))
    timezone.get_default_timezone()  # reads the zone's file (tzdata's)


def _read_migrations():
    loader = MigrationLoader(None, load=False)
    loader.load_disk()
    return loader.disk_migrations, loader.migrated_apps, loader.unmigrated_apps


_compile_templates()
_MIGRATIONS = _read_migrations()


def _load_recorded_migrations(loader):
    """MigrationLoader.load_disk, from what _read_migrations read at build time."""
    disk, migrated, unmigrated = _MIGRATIONS
    loader.disk_migrations = {
        key: type(migration)(migration.name, migration.app_label)
        for key, migration in disk.items()
    }
    loader.migrated_apps = set(migrated)
    loader.unmigrated_apps = set(unmigrated)


_ready = False
_ready_lock = threading.Lock()


def _first_request():
    environment = site_settings.from_environment()
    settings.SECRET_KEY = environment["SECRET_KEY"]
    settings.ALLOWED_HOSTS = environment["ALLOWED_HOSTS"]
    settings.DATABASES["default"]["NAME"] = environment["DATABASE_NAME"]
    if sys.platform == "wasi":
        # In the component the migration files are gone (the modules are not).
        MigrationLoader.load_disk = _load_recorded_migrations
    # Creates the tables on the first start, applies new migrations after an upgrade.
    call_command(migrate.Command(), interactive=False, verbosity=0)


def application(environ, start_response):
    global _ready
    if not _ready:
        with _ready_lock:
            if not _ready:
                _first_request()
                _ready = True
    return django_application(environ, start_response)
