"""A GPU machine: its agent, NVML readings, ComfyUI/SwarmUI clients, install detection, checks."""
