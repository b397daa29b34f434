from django.urls import path

from guestbook import views

urlpatterns = [
    path("", views.index, name="index"),
    path("entries.json", views.entries_json, name="entries-json"),
    path("boom", views.boom, name="boom"),
    # STATIC_URL, written out: reading settings.STATIC_URL here, at import, would fix it
    # for good before any request says under which prefix the site is mounted.
    path("static/<path:name>", views.static_file, name="static"),
]
