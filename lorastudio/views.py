"""Site-wide pages."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from training.energy import weekly_usage
from training.models import TrainingRun
from training.views import dashboard_context

DASHBOARD_USAGE_WEEKS = 4


@login_required
def home(request):
    """The dashboard: my runs (progress, ETA, queue place), my datasets, my GPU use per week
    and the lab board."""
    context = dashboard_context(request.user)
    mine = TrainingRun.objects.filter(owner=request.user)
    context.update(
        usage=weekly_usage(mine, DASHBOARD_USAGE_WEEKS),
        usage_weeks=DASHBOARD_USAGE_WEEKS,
        usage_priced=settings.LORASTUDIO_COST_PER_KWH > 0,
        usage_currency=settings.LORASTUDIO_COST_CURRENCY,
    )
    return render(request, "home.html", context)
