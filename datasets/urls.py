"""Students' dataset pages."""

from django.urls import path

from datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("new/", views.dataset_create, name="dataset-create"),
    path("<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("<int:pk>/edit/", views.dataset_edit, name="dataset-edit"),
    path("<int:pk>/upload/", views.dataset_upload, name="dataset-upload"),
    path("<int:pk>/captions/", views.dataset_captions, name="dataset-captions"),
    path("<int:pk>/delete/", views.dataset_delete, name="dataset-delete"),
    path("<int:pk>/images/<int:image_pk>/delete/", views.image_delete, name="image-delete"),
    path("<int:pk>/images/<int:image_pk>/file/", views.image_file, name="image-file"),
    path("<int:pk>/images/<int:image_pk>/thumb/", views.image_thumb, name="image-thumb"),
]
