"""Students' training pages."""

from django.urls import path

from training import licence_views, report_views, views
from training.evaluation import views as evaluation_views

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
    path("runs/<int:pk>/resume/", views.run_resume, name="run-resume"),
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
    path("runs/<int:pk>/evaluate/", evaluation_views.evaluate, name="run-evaluate"),
    path(
        "runs/<int:pk>/evaluations/<int:evaluation_id>/cancel/",
        evaluation_views.evaluation_cancel,
        name="evaluation-cancel",
    ),
    path(
        "runs/<int:pk>/evaluations/<int:evaluation_id>/grid.png",
        evaluation_views.evaluation_grid,
        name="evaluation-grid",
    ),
    path(
        "runs/<int:pk>/eval-images/<int:image_id>/", evaluation_views.eval_image, name="eval-image"
    ),
    path("runs/<int:pk>/keep/<int:artifact_id>/", evaluation_views.keep_epoch, name="keep-epoch"),
    path("lab/board/", views.lab_board, name="lab-board"),
    path("usage/", report_views.usage, name="usage"),
    path("models/<int:pk>/licence/", licence_views.licence, name="licence"),
]
