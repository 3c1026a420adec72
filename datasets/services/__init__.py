"""Dataset services: every write to datasets goes through these functions.

Split by what they write: datasets.py (a dataset's settings), images.py (adding and deleting
images), captions.py (the captions editor and bulk tools).
"""

from datasets.archives import ArchiveRefused
from datasets.ingest import IngestReport
from datasets.services.captions import apply_caption_tool, save_captions
from datasets.services.datasets import create_dataset, delete_dataset, lint_dataset, update_dataset
from datasets.services.images import (
    IngestError,
    add_images,
    delete_image,
    import_folder,
    import_zip,
    upload_files,
)

__all__ = [
    "ArchiveRefused",
    "IngestError",
    "IngestReport",
    "add_images",
    "apply_caption_tool",
    "create_dataset",
    "delete_dataset",
    "delete_image",
    "import_folder",
    "import_zip",
    "lint_dataset",
    "save_captions",
    "update_dataset",
    "upload_files",
]
