"""LoRA Studio: a Django app in which a lab trains LoRA adapters with kohya-ss/sd-scripts."""

# LoRA Studio's version, recorded in every run's provenance and LoRA metadata (with the
# checkout's `git describe`). Raise it when a release changes what a run trains.
__version__ = "0.16.0"
