"""The app's static files (guestbook/static/), read into memory when this module is
imported. A component built by `cheroot-wasm build-python` has no filesystem of its own at
request time (only the directories its route grants): what the app needs from its source
tree must be read while it is built, as modules and templates are."""

import mimetypes
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "static"

FILES = {
    path.relative_to(ROOT).as_posix(): (
        path.read_bytes(),
        mimetypes.guess_type(path.name)[0] or "application/octet-stream",
    )
    for path in sorted(ROOT.rglob("*"))
    if path.is_file()
}
