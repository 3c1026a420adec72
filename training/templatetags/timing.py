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


def _hours_minutes(minutes: int) -> str:
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" if not minutes else f"{hours} h {minutes:02d} min"


@register.filter
def hours_left(hours) -> str:
    """GPU-hours still to use, to the minute and rounded down ("9 h 59 min"): a ten-second
    run takes a visible minute off a quota, and what is shown is never more than is left."""
    return "" if hours is None else _hours_minutes(int(float(hours) * 60 + 1e-9))


@register.filter
def hours_used(hours) -> str:
    """GPU-hours used, to the minute and rounded up ("1 min" after ten seconds), so that
    used and left add up to the limit."""
    import math

    return "" if hours is None else _hours_minutes(math.ceil(float(hours) * 60 - 1e-9))
