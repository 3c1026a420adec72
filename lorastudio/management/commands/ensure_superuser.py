"""Create the first superuser when there is none; print its password once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = (
        "Create a superuser only when none exists. The password comes from "
        "DJANGO_SUPERUSER_PASSWORD or is generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--username", default=os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        )
        parser.add_argument("--email", default=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""))

    @transaction.atomic
    def handle(self, *args, username: str, email: str, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser already exists; nothing to do.")
            return
        if not username.strip():
            raise CommandError("--username cannot be empty.")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A non-superuser account named {username!r} already exists.")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or ""
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        else:
            # The admin's password meets the same rules (AUTH_PASSWORD_VALIDATORS) as any
            # password set through the site.
            try:
                validate_password(password, User(username=username, email=email))
            except ValidationError as exc:
                raise CommandError(
                    "DJANGO_SUPERUSER_PASSWORD is too weak: " + " ".join(exc.messages)
                ) from None
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        if generated:
            self.stdout.write(
                self.style.WARNING(f"Its password (shown once, write it down): {password}")
            )
