"""Students' training pages."""

from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("runs/", views.run_list, name="run-list"),
    path("runs/new/", views.run_create, name="run-create"),
    path("runs/plan/", views.run_plan, name="run-plan"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/ready/", views.run_ready, name="run-ready"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("runs/<int:pk>/log.txt", views.run_log, name="run-log"),
    path(
        "runs/<int:pk>/files/<int:artifact_id>/",
        views.artifact_download,
        name="artifact-download",
    ),
    path("runs/<int:pk>/samples/<int:sample_id>/", views.sample_file, name="sample-file"),
    path("lab/board/", views.lab_board, name="lab-board"),
]
