"""Loaded with `-p` before pytest-django configures Django: the tests' environment."""

import os
import tempfile

os.environ.setdefault("DEBUG", "False")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("LORASTUDIO_GPU_BACKEND", "fake")
os.environ.setdefault("LORASTUDIO_DATA_DIR", tempfile.mkdtemp(prefix="lorastudio-tests-"))
# Never read a developer's .env during tests.
os.environ.setdefault("LORASTUDIO_ENV_FILE", os.devnull)
# Nor their Hugging Face cache: the tests set HF_HOME (and offline mode) where they need it.
for name in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.pop(name, None)
