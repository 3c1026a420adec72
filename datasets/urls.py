"""Students' dataset pages."""

app_name = "datasets"
urlpatterns: list = []
