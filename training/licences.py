"""Licence gates: a base model may require each user to accept its licence once before any
run on it is planned (training.planning refuses until then)."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from training.models import BaseModel, LicenceAcceptance
from training.notifications.messages import site_url


def licence_sha256(base_model: BaseModel) -> str:
    return hashlib.sha256(base_model.licence_text.encode("utf-8")).hexdigest()


def needs_acceptance(user, base_model: BaseModel) -> bool:
    """Whether `user` must still accept `base_model`'s licence before training on it."""
    if not base_model.licence_requires_acceptance:
        return False
    return not LicenceAcceptance.objects.filter(user=user, base_model=base_model).exists()


def licence_refusal(owner, base_model: BaseModel) -> str | None:
    """Why the licence gate refuses `owner`'s run on `base_model` (with the page that
    lifts it, as a whole address: the refusal reaches commands and the API too), or None."""
    if not needs_acceptance(owner, base_model):
        return None
    url = site_url(reverse("training:licence", args=[base_model.pk]))
    return (
        f"{base_model.name} may only be trained on after accepting its licence: {owner} has "
        f"not accepted it yet. Read and accept it at {url}"
    )


@transaction.atomic
def accept_licence(user, base_model: BaseModel) -> LicenceAcceptance:
    """Record that `user` accepted `base_model`'s licence (once: accepting again keeps the
    first acceptance and its time)."""
    if not base_model.enabled:
        raise ValidationError(f"Base model {base_model.name} is disabled.")
    if not base_model.licence_requires_acceptance:
        raise ValidationError(f"{base_model.name} asks no licence to be accepted.")
    earlier = LicenceAcceptance.objects.filter(user=user, base_model=base_model).first()
    if earlier is not None:
        return earlier
    acceptance = LicenceAcceptance(
        user=user, base_model=base_model, licence_sha256=licence_sha256(base_model)
    )
    acceptance.full_clean()
    acceptance.save()
    return acceptance
