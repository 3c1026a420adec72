"""Evaluations: a finished run's LoRA files rendered side by side by its node's ComfyUI or
SwarmUI (epochs × strengths × seeds × prompts), and giving the GPU back to them.

options (what people type) → planning (the one plan path) → services (request, cancel, keep
an epoch) → placement (the queue, with training) → runner (on the node: clients, workflow) →
grid (the page and the downloadable picture); server stops and starts an inference server
around training. docs/evaluation.md tells the whole story.
"""
