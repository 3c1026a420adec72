"""The token API for scripts (`/api/v1/`, django-ninja) and personal API tokens."""
