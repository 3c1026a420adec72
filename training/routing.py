"""Websocket routes: a run's live page and the dashboard's lab board."""

from django.urls import path

from training import consumers

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", consumers.RunConsumer.as_asgi()),
    path("ws/lab/", consumers.LabConsumer.as_asgi()),
]
