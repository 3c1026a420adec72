"""Students' training pages."""

app_name = "training"
urlpatterns: list = []
