"""The API's one NinjaAPI: routers, token authentication and error answers.

Mounted at /api/v1/ (lorastudio/urls.py); its OpenAPI description is /api/v1/schema/ and
an interactive page /api/v1/docs/ (both open: they describe, they hold no data).
"""

from __future__ import annotations

from ninja import NinjaAPI

from api import errors
from api.auth import TokenAuth
from api.routes import catalog, datasets, run_files, runs

api = NinjaAPI(
    title="LoRA Studio API",
    version="1",
    description=(
        "Scripts' door to LoRA Studio: datasets, runs, logs and LoRA files, with the same "
        "permissions and checks as the pages. Authenticate with the header "
        "`Authorization: Token <token>` (a personal API token from the API tokens page or "
        "`manage.py api_token USER`)."
    ),
    urls_namespace="api-v1",
    openapi_url="/schema/",
    docs_url="/docs/",
    auth=TokenAuth(),
)
errors.install(api)
api.add_router("/datasets/", datasets.router)
api.add_router("/runs/", runs.router)
api.add_router("/runs/", run_files.router)
api.add_router("/", catalog.router)
