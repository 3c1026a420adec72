from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    verbose_name = "Datasets"
    name = "datasets"
    default_auto_field = "django.db.models.BigAutoField"
