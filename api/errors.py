"""The API's error answers: JSON `{"detail": …, "errors": {field: message}}` with the status
a script can act on (400 bad input, 401 no valid token, 403, 404, 409 conflict, 429)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as RequestInvalid

from api.auth import RateLimited
from sdscripts.params import ParamError


class Conflict(Exception):
    """The request is fine but the object's state refuses it (a finished run's cancel)."""


def _field(loc) -> str:
    """A readable field path from a pydantic location: ("body", "payload", "params") → params."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts and parts[0] in ("query", "path", "form", "file", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def request_invalid(request, exc: RequestInvalid, api):
    errors: dict[str, str] = {}
    for error in exc.errors:
        errors.setdefault(_field(error.get("loc", ())), error.get("msg", "invalid"))
    detail = "Invalid input: " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


def validation_error(request, exc: ValidationError, api):
    if hasattr(exc, "error_dict"):
        errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
    else:
        errors = {"__all__": " ".join(exc.messages)}
    detail = " ".join(" ".join(v) if isinstance(v, list) else v for v in errors.values())
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


def param_error(request, exc: ParamError, api):
    errors = {f"params.{name}": message for name, message in exc.errors.items()}
    detail = "Bad training parameters: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


def permission_denied(request, exc: PermissionDenied, api):
    return api.create_response(request, {"detail": str(exc) or "Not allowed."}, status=403)


def not_found(request, exc: Http404, api):
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


def conflict(request, exc: Conflict, api):
    return api.create_response(request, {"detail": str(exc)}, status=409)


def unauthenticated(request, exc: AuthenticationError, api):
    detail = (
        "A valid API token is needed: send the header “Authorization: Token <token>” "
        "(create one on the API tokens page or with manage.py api_token)."
    )
    response = api.create_response(request, {"detail": detail}, status=401)
    response["WWW-Authenticate"] = "Token"
    return response


def rate_limited(request, exc: RateLimited, api):
    response = api.create_response(request, {"detail": str(exc)}, status=429)
    response["Retry-After"] = str(exc.wait)
    return response


HANDLERS = {
    RequestInvalid: request_invalid,
    ValidationError: validation_error,
    ParamError: param_error,
    PermissionDenied: permission_denied,
    Http404: not_found,
    Conflict: conflict,
    AuthenticationError: unauthenticated,
    RateLimited: rate_limited,
}


def install(api) -> None:
    """Register every handler above on `api`."""
    for exc_class, handler in HANDLERS.items():
        api.add_exception_handler(exc_class, lambda request, exc, h=handler: h(request, exc, api))
