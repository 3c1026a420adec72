"""Students' training pages."""

from django.urls import path

from training import report_views, views

app_name = "training"
urlpatterns = [
    path("runs/", views.run_list, name="run-list"),
    path("runs/new/", views.run_create, name="run-create"),
    path("runs/plan/", views.run_plan, name="run-plan"),
    path("runs/compare/", report_views.run_compare, name="run-compare"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/ready/", views.run_ready, name="run-ready"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("runs/<int:pk>/log.txt", views.run_log, name="run-log"),
    path("runs/<int:pk>/report/", report_views.run_report, name="run-report"),
    path("runs/<int:pk>/report.pdf", report_views.run_report_pdf, name="run-report-pdf"),
    path("runs/<int:pk>/purpose/", report_views.run_purpose, name="run-purpose"),
    path(
        "runs/<int:pk>/files/<int:artifact_id>/",
        views.artifact_download,
        name="artifact-download",
    ),
    path("runs/<int:pk>/samples/<int:sample_id>/", views.sample_file, name="sample-file"),
    path("lab/board/", views.lab_board, name="lab-board"),
    path("usage/", report_views.usage, name="usage"),
]
