"""Settings of the example site: production-style (DEBUG off), one app, SQLite.

Read from the environment (a route's `env` in routes.toml; cheroot's own environment when
served natively), by `from_environment`: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS
(comma-separated) and DJANGO_DATA_DIR (where db.sqlite3 lives; default /data, the route's
`data` directory). A component is a snapshot taken after this module ran at build time, so
django_site/wsgi.py applies them again at the first request.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent



def from_environment():
    """The settings that come from the environment, by name."""
    return {
        # A fixed default so the example runs as it is; set DJANGO_SECRET_KEY in a deployment.
        "SECRET_KEY": os.environ.get(
            "DJANGO_SECRET_KEY", "example-only-5b1f0c9e2d7a4e3c8f6a1b0d9e8c7f6a5b4c3d2e1f0a9b8c"
        ),
        "ALLOWED_HOSTS": os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(","),
        "DATABASE_NAME": os.path.join(os.environ.get("DJANGO_DATA_DIR", "/data"), "db.sqlite3"),
    }


_environment = from_environment()
SECRET_KEY = _environment["SECRET_KEY"]
ALLOWED_HOSTS = _environment["ALLOWED_HOSTS"]
DEBUG = False

INSTALLED_APPS = ["guestbook"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _environment["DATABASE_NAME"],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions in a signed cookie: nothing to store or clean up server-side, and a visitor's
# session survives a new instance, a new database or another server.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Relative: Django puts the mount prefix (SCRIPT_NAME) before it. urls.py serves it.
STATIC_URL = "static/"

# Errors (a 500's traceback) go to stderr: cheroot's log natively, the route's log under
# cheroot-wasm.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
