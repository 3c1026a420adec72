"""A base model's licence page: read it, and accept it once (training.licences)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from training.licences import accept_licence
from training.models import BaseModel, LicenceAcceptance


def _next_url(request, base_model: BaseModel) -> str:
    """Where to go once accepted: a `next` on this site, else a new run on this model."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return f"{reverse('training:run-create')}?base_model={base_model.pk}"


@login_required
@require_http_methods(["GET", "POST"])
def licence(request, pk: int):
    """Show the licence of an enabled base model; POST with `accept=1` accepts it."""
    base_model = get_object_or_404(BaseModel, pk=pk, enabled=True)
    error = ""
    if request.method == "POST":
        if request.POST.get("accept") != "1":
            error = "Tick “I accept this licence” to accept it."
        else:
            try:
                accept_licence(request.user, base_model)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, f"You accepted the licence of {base_model.name}.")
                return redirect(_next_url(request, base_model))
    acceptance = LicenceAcceptance.objects.filter(user=request.user, base_model=base_model).first()
    context = {
        "base_model": base_model,
        "acceptance": acceptance,
        "error": error,
        "next": _next_url(request, base_model),
    }
    return render(request, "training/licence_accept.html", context, status=400 if error else 200)
