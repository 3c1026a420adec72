"""Create a personal API token for a user and print it once."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.tokens import create_token


class Command(BaseCommand):
    help = (
        "Create an API token for USER and print it once (only its hash is kept). Scripts send "
        "it as the header 'Authorization: Token <token>'; revoke it on the API tokens page "
        "or in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The user the token acts as.")
        parser.add_argument(
            "--name", default="created with manage.py api_token", help="What the token is for."
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"There is no user {opts['username']!r}.")
        try:
            token, text = create_token(user, opts["name"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(
            f"API token “{token.name}” for {user.get_username()} ({token.prefix}…); "
            "it is shown only now:"
        )
        self.stdout.write(text)
