"""Site-wide pages."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from training.views import dashboard_context


@login_required
def home(request):
    """The dashboard: my runs (progress, ETA, queue place), my datasets and the lab board."""
    return render(request, "home.html", dashboard_context(request.user))
