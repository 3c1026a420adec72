"""Provenance: what made a run, captured when its trainer starts and never edited.

hashing (model files, hashed once per size and modification time), environment (machine,
GPU, sd-scripts and package versions, LoRA Studio's own), capture (the RunProvenance record
and the lorastudio_* keys written into the run's LoRA files), exact ("run exactly again":
what changed since, refused with the reason).
"""
