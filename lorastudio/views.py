"""Site-wide pages."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from datasets.models import Dataset
from training.models import TrainingRun


@login_required
def home(request):
    """A student's landing page: their runs and datasets."""
    runs = (
        TrainingRun.objects.visible_to(request.user)
        .filter(owner=request.user)
        .select_related("base_model", "dataset", "node", "gpu")[:20]
    )
    datasets = Dataset.objects.filter(owner=request.user)[:20]
    return render(request, "home.html", {"runs": runs, "datasets": datasets})
