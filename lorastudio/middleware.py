"""Keep students out of the Django admin."""

from django.contrib import messages
from django.shortcuts import redirect


class StaffOnlyAdminMiddleware:
    """Send a logged-in non-staff user who opens /admin/ back to their home page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            request.path.startswith("/admin/")
            and user is not None
            and user.is_authenticated
            and not user.is_staff
        ):
            messages.warning(request, "The admin is for lab staff.")
            return redirect("home")
        return self.get_response(request)
