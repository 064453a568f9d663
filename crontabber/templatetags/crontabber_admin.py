"""{% load crontabber_admin %}: the admin's templates show times as its pages do."""

from django import template

from ..admin import display as admin_display

register = template.Library()


@register.filter
def when(instant):
    """An instant in TIME_ZONE and UTC, the exact instant on hover (admin_display.when)."""
    return admin_display.when(instant)
