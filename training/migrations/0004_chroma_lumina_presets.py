"""Starting presets for Chroma and Lumina-Image 2.0 (editable afterwards in the admin)."""

from django.db import migrations

STUDENT_BOUNDS = {
    "network_dim": {"min": 4, "max": 64},
    "max_train_epochs": {"min": 1, "max": 30},
    "train_batch_size": {"min": 1, "max": 4},
}
LOCKED = ["mixed_precision", "save_precision"]

PRESETS = [
    ("Chroma, 1024", "chroma", {"resolution": 1024, "train_batch_size": 1,
     "max_train_epochs": 10, "network_dim": 16, "network_alpha": 16, "learning_rate": 1e-4,
     "optimizer_type": "AdamW8bit", "mixed_precision": "bf16", "cache_latents": True,
     "cache_text_encoder_outputs": True, "network_train_unet_only": True,
     "gradient_checkpointing": True, "fp8_base": True, "guidance_scale": 0.0,
     "timestep_sampling": "sigmoid", "model_prediction_type": "raw"}, 55,
     "Chroma LoRA (sd-scripts' recommended settings: sigmoid timesteps, raw prediction, "
     "guidance 0), fp8 base, cached text encoder."),
    ("Lumina-Image 2.0, 1024", "lumina2", {"resolution": 1024, "train_batch_size": 1,
     "max_train_epochs": 10, "network_dim": 8, "network_alpha": 8, "learning_rate": 1e-4,
     "optimizer_type": "AdamW8bit", "mixed_precision": "bf16", "cache_latents": True,
     "cache_text_encoder_outputs": True, "network_train_unet_only": True,
     "gradient_checkpointing": True, "timestep_sampling": "nextdit_shift",
     "discrete_flow_shift": 6.0, "model_prediction_type": "raw"}, 60,
     "Lumina-Image 2.0 LoRA as sd-scripts documents it: nextdit_shift, flow shift 6."),
]  # fmt: skip


def create_presets(apps, schema_editor):
    Preset = apps.get_model("training", "Preset")
    for name, arch, values, order, description in PRESETS:
        Preset.objects.update_or_create(
            name=name,
            defaults={
                "architecture": arch,
                "values": values,
                "locked": LOCKED,
                "bounds": STUDENT_BOUNDS,
                "sort_order": order,
                "description": description,
            },
        )


def remove_presets(apps, schema_editor):
    Preset = apps.get_model("training", "Preset")
    Preset.objects.filter(name__in=[p[0] for p in PRESETS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_registry_fields"),
    ]

    operations = [migrations.RunPython(create_presets, remove_presets)]
