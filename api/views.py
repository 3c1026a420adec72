"""The API tokens page: create a token (shown once), see and revoke your tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from api.forms import TokenForm
from api.models import ApiToken


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    """Your tokens; POST creates one and shows it on this answer only."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, text = tokens.create_token(request.user, form.cleaned_data["name"])
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            created = {"token": token, "text": text}
            form = TokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=request.user),
    }
    response = render(request, "api/token_list.html", context)
    if created:
        response["Cache-Control"] = "no-store"  # the token is on this page only
    return response


@login_required
@require_POST
def token_revoke(request, pk: int):
    """Revoke one of your tokens at once (another user's answers 404)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.revoke_token(token, by=request.user)
    messages.success(request, f"Revoked the token “{token.name}” ({token.prefix}…).")
    return redirect("api:token-list")
