"""What LoRA Studio knows about kohya-ss/sd-scripts, as pure Python (no Django, no I/O but
lora_file's).

architectures (the registry), params and rules (knobs and their checks), flags (options each
script accepts), command (argv, dataset TOML, prompt file), prompts, vram (memory planner),
progress (reading the console), outcome (how a trainer ended), lora_file (a LoRA file's
metadata, read and rewritten canonically). docs/sd-scripts.md says where each fact comes from.
"""
