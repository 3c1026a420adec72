"""Base models and presets: the model follows the architecture registry."""

from sdscripts.architectures import FILE_ROLES
from training.models import BaseModel


def test_base_model_has_one_field_per_file_role_of_the_registry():
    fields = {f.name for f in BaseModel._meta.get_fields()}
    assert set(FILE_ROLES) <= fields
    assert {f for f in fields if f.startswith(("clip", "t5", "gemma"))} <= set(FILE_ROLES)
