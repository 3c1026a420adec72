"""The built-in DEMO trainer: a tiny PyTorch LoRA trainer that behaves like sd-scripts.

Run as `python -m demo_trainer`; see demo_trainer.cli. It stands in for sd-scripts on
machines without a GPU (and in tests); it is labelled as a demo everywhere.
"""
