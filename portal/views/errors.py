"""Error pages that keep the portal's look and say what to do next."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A stale or foreign form: explain, change nothing (Django's default page is for developers)."""
    return render(request, "403_csrf.html", status=403)
