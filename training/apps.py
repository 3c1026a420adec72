from django.apps import AppConfig


class TrainingConfig(AppConfig):
    verbose_name = "Training"
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"
