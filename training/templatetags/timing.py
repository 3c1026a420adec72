"""Template filters for estimates: durations in round words, seconds for data attributes."""

from __future__ import annotations

from django import template

from training.estimates import about as about_words

register = template.Library()


@register.filter
def about(seconds) -> str:
    """A duration in round words ("about 7 min"); "unknown" for None."""
    return about_words(seconds)


@register.filter
def whole(seconds) -> str:
    """Whole seconds for a data attribute; "" when unknown."""
    return "" if seconds is None else str(round(float(seconds)))


@register.filter
def percent(fraction) -> str:
    """A fraction as a whole percentage ("12 %"); "" when unknown."""
    return "" if fraction is None else f"{round(100 * float(fraction))} %"
