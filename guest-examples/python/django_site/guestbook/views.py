from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from . import static
from .forms import EntryForm
from .models import Entry


def index(request):
    """The guestbook: GET shows it, POST (with the CSRF token) adds an entry and redirects
    back (Post/Redirect/Get). A visit counter lives in the session."""
    if request.method == "POST":
        form = EntryForm(request.POST)
        if form.is_valid():
            form.save()
            return redirect("index")
    else:
        form = EntryForm()
        request.session["visits"] = request.session.get("visits", 0) + 1
    return render(
        request,
        "guestbook/index.html",
        {
            "form": form,
            "entries": Entry.objects.all()[:50],
            "visits": request.session.get("visits", 0),
        },
    )


@require_GET
def entries_json(request):
    entries = [
        {"id": e.id, "text": e.text, "created": e.created.isoformat()}
        for e in Entry.objects.all()
    ]
    return JsonResponse({"entries": entries})


def boom(request):
    raise RuntimeError("boom: a view that fails, to show the 500 page")


@require_GET
def static_file(request, name):
    """The app's static files, read once when the module is imported (see static.py)."""
    try:
        body, content_type = static.FILES[name]
    except KeyError:
        raise Http404(name) from None
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "public, max-age=3600"
    return response
