"""Loaded with `-p` before pytest-django configures Django: the tests' environment."""

import os
import tempfile

os.environ.setdefault("DEBUG", "False")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("LORASTUDIO_GPU_BACKEND", "fake")
os.environ.setdefault("LORASTUDIO_DATA_DIR", tempfile.mkdtemp(prefix="lorastudio-tests-"))
# Never read a developer's .env during tests.
os.environ.setdefault("LORASTUDIO_ENV_FILE", os.devnull)
