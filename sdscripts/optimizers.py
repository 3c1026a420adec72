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
# The module each optimizer imports inside sd-scripts (library/train_util.get_optimizer);
# sd-scripts' own requirements do not install all of them (dadaptation, for one).
OPTIMIZER_MODULES = {
    "AdamW": "torch",
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
