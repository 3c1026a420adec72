from django.apps import AppConfig


class LorastudioConfig(AppConfig):
    name = "lorastudio"
    verbose_name = "LoRA Studio site"

    def ready(self) -> None:
        # Connects the login throttle's signal receivers.
        from lorastudio import throttle  # noqa: F401
