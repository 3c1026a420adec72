"""Create the starting presets of issue 4 (editable afterwards in the admin)."""

from django.db import migrations

SD35_BASE = {
    "resolution": 768,
    "train_batch_size": 1,
    "max_train_epochs": 10,
    "network_dim": 32,
    "network_alpha": 16,
    "learning_rate": 1e-4,
    "optimizer_type": "AdamW8bit",
    "mixed_precision": "bf16",
    "cache_latents": True,
}
STUDENT_BOUNDS = {
    "network_dim": {"min": 4, "max": 64},
    "max_train_epochs": {"min": 1, "max": 30},
    "train_batch_size": {"min": 1, "max": 4},
}
LOCKED = ["mixed_precision", "save_precision"]

PRESETS = [
    ("SD 3.5 Medium, 768", "sd35_medium", SD35_BASE, 10,
     "The seed's recommended baseline: 768 px, batch 1, 10 epochs, dim 32, alpha 16."),
    ("SD 3.5 Medium, quality 1024", "sd35_medium", {**SD35_BASE, "resolution": 1024}, 11,
     "Higher quality at 1024 px; needs more memory and time."),
    ("SD 3.5 Large, 768", "sd35_large", SD35_BASE, 20,
     "The seed's recommended baseline for SD 3.5 Large."),
    ("SD 3.5 Large, quality 1024", "sd35_large", {**SD35_BASE, "resolution": 1024}, 21,
     "Higher quality at 1024 px; the planner adds memory savers as needed."),
    ("SDXL, 1024", "sdxl", {"resolution": 1024, "train_batch_size": 1, "max_train_epochs": 10,
     "network_dim": 16, "network_alpha": 8, "learning_rate": 1e-4,
     "optimizer_type": "AdamW8bit", "mixed_precision": "bf16", "cache_latents": True,
     "network_train_unet_only": True}, 30, "SDXL LoRA, U-Net only, 1024 px."),
    ("SD 1.5, 512", "sd15", {"resolution": 512, "train_batch_size": 2, "max_train_epochs": 10,
     "network_dim": 16, "network_alpha": 8, "learning_rate": 1e-4,
     "optimizer_type": "AdamW8bit", "mixed_precision": "bf16", "cache_latents": True}, 40,
     "SD 1.5 LoRA at 512 px."),
    ("FLUX.1 dev, 1024", "flux1_dev", {"resolution": 1024, "train_batch_size": 1,
     "max_train_epochs": 10, "network_dim": 16, "network_alpha": 16, "learning_rate": 1e-4,
     "optimizer_type": "AdamW8bit", "mixed_precision": "bf16", "cache_latents": True,
     "cache_text_encoder_outputs": True, "network_train_unet_only": True,
     "gradient_checkpointing": True, "fp8_base": True, "guidance_scale": 1.0,
     "timestep_sampling": "shift", "discrete_flow_shift": 3.1582,
     "model_prediction_type": "raw"}, 50, "FLUX.1 dev LoRA, fp8 base, cached text encoders."),
    ("Demo (CPU)", "demo", {"resolution": 64, "train_batch_size": 2, "max_train_epochs": 5,
     "network_dim": 4, "network_alpha": 4, "learning_rate": 1e-3, "save_every_n_epochs": 1,
     "sample_every_n_epochs": 1, "seed": 42}, 90,
     "DEMO: a tiny CPU trainer that finishes in well under a minute. Not a real model."),
]  # fmt: skip


def create_presets(apps, schema_editor):
    Preset = apps.get_model("training", "Preset")
    for name, arch, values, order, description in PRESETS:
        Preset.objects.update_or_create(
            name=name,
            defaults={
                "architecture": arch,
                "values": values,
                "locked": [] if arch == "demo" else LOCKED,
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
        ("training", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_presets, remove_presets)]
