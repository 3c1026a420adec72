"""Plain words for the knob table (`sdscripts.params`): what the new-run page calls each knob.

Every knob has a label a student can read; the sd-scripts option name is shown beside it as
a hint, never instead of it. `BASIC` lists the few choices the page shows outside its closed
"Advanced" section, in page order, each with a sentence that says what it changes.
Pure: no Django, no I/O. tests/sdscripts/test_labels.py keeps this table and PARAMS in step.
"""

from __future__ import annotations

LABELS: dict[str, str] = {
    "resolution": "Training image size (pixels)",
    "train_batch_size": "Images per step",
    "max_train_epochs": "Training length (passes over the images)",
    "max_train_steps": "Fixed number of steps instead",
    "num_repeats": "Times each image is shown per pass",
    "class_tokens": "Trigger word",
    "network_dim": "Strength of the adaptation",
    "network_alpha": "Scale of the update",
    "learning_rate": "Learning speed",
    "text_encoder_lr": "Learning speed of the text encoders",
    "unet_lr": "Learning speed of the image model",
    "optimizer_type": "Optimizer",
    "lr_scheduler": "Learning-speed schedule",
    "lr_warmup_steps": "Warm-up steps",
    "mixed_precision": "Compute precision",
    "save_precision": "Precision of the saved file",
    "seed": "Random seed",
    "save_every_n_epochs": "Save a copy every N passes",
    "save_every_n_steps": "Save a copy every N steps",
    "sample_every_n_epochs": "Sample images every N passes",
    "sample_every_n_steps": "Sample images every N steps",
    "sample_steps": "Quality of the sample images (steps)",
    "gradient_checkpointing": "Recompute instead of storing (saves memory)",
    "cache_latents": "Encode the images once",
    "cache_latents_to_disk": "Keep encoded images on disk",
    "cache_text_encoder_outputs": "Encode the captions once",
    "cache_text_encoder_outputs_to_disk": "Keep encoded captions on disk",
    "network_train_unet_only": "Train the image model only",
    "fp8_base": "Hold the base model in 8 bits",
    "blocks_to_swap": "Model blocks kept in CPU memory",
    "cpu_offload_checkpointing": "Offload recomputed parts to CPU memory",
    "shuffle_caption": "Shuffle caption tags",
    "caption_dropout_rate": "Share of steps without a caption",
    "keep_tokens": "Tags kept first when shuffling",
    "flip_aug": "Mirror images at random",
    "color_aug": "Vary colours slightly",
    "random_crop": "Crop images at random",
    "enable_bucket": "Keep aspect ratios (buckets)",
    "min_bucket_reso": "Smallest bucket side (pixels)",
    "max_bucket_reso": "Largest bucket side (pixels)",
    "bucket_reso_steps": "Bucket size step (pixels)",
    "max_grad_norm": "Gradient clipping",
    "noise_offset": "Noise offset (darker darks, brighter lights)",
    "save_state": "Save the training state (to resume)",
    "guidance_scale": "Guidance used in training",
    "timestep_sampling": "Timestep sampling",
    "model_prediction_type": "Model prediction handling",
    "discrete_flow_shift": "Flow shift",
}

# The student-facing choices, in page order, with what each one changes in plain words.
BASIC: dict[str, str] = {
    "class_tokens": "The word that calls up what the LoRA learnt in a prompt; images without "
    "a caption are trained with it. Proposed from the dataset.",
    "max_train_epochs": "More passes learn more but take longer and may copy the images too "
    "closely. Proposed from the number of images.",
    "num_repeats": "Small datasets show each image several times per pass. Proposed from the "
    "number of images.",
    "network_dim": "Higher learns finer detail (and more of the images' quirks); the file "
    "grows with it.",
    "resolution": "Larger is sharper but slower and needs more memory. Proposed from the "
    "size of the dataset's images.",
}

# The basic knobs whose value the dataset proposes (training.forms fills them when empty).
FROM_DATASET = ("class_tokens", "max_train_epochs", "num_repeats", "resolution")


def label(name: str) -> str:
    """The plain label of a knob (its option name only for a knob missing from the table)."""
    return LABELS.get(name, name)
