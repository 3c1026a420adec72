"""Login forms of the site and of the admin, both throttled (lorastudio/throttle.py)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from lorastudio.throttle import client_address, login_refusal


class ThrottledLoginMixin:
    """Refuse a login attempt while its username or address is throttled, before any
    password is checked."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        refusal = login_refusal(username, client_address(self.request))
        if refusal is not None:
            raise forms.ValidationError(refusal, code="throttled")
        return super().clean()


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your username and password did not match. Please try again.",
    }


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
