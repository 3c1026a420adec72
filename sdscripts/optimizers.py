"""The optimizers and learning-rate schedules runs may choose (sd-scripts' names).

Pure: no Django, no I/O. `sdscripts.params` re-exports these names.
"""

OPTIMIZERS = (
    "AdamW",
    "AdamW8bit",
    "PagedAdamW8bit",
    "Lion",
    "Lion8bit",
    "Prodigy",
    "Adafactor",
    "DAdaptAdam",
    "AdamWScheduleFree",
)
# The optional Python module each optimizer imports in sd-scripts (library/train_util.py,
# get_optimizer); "" = torch itself. sd-scripts' requirements.txt installs some of them, not
# dadaptation: check_node imports each in the node's sd-scripts Python (GPUNode.engine_modules).
OPTIMIZER_MODULES: dict[str, str] = {
    "AdamW": "",
    "AdamW8bit": "bitsandbytes",
    "PagedAdamW8bit": "bitsandbytes",
    "Lion": "lion_pytorch",
    "Lion8bit": "bitsandbytes",
    "Prodigy": "prodigyopt",
    "Adafactor": "transformers",
    "DAdaptAdam": "dadaptation",
    "AdamWScheduleFree": "schedulefree",
}
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "adafactor",
)
