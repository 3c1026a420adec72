"""Websocket routes (the consumers come with the live pages)."""

websocket_urlpatterns: list = []
