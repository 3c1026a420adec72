"""Option names each sd-scripts training script accepts (kohya-ss/sd-scripts `main`, v0.10+).

Taken from the argparse calls in its source: `library/utils.add_logging_arguments`,
`library/train_util.add_{sd_models,dataset,training,masked_loss,optimizer,dit_training}_arguments`,
`library/sai_model_spec.add_model_spec_arguments`, `library/deepspeed_utils`,
`library/config_util.add_config_arguments`, `library/custom_train_functions`,
`train_network.setup_parser`, `library/sdxl_train_util.add_sdxl_training_arguments`,
`library/sd3_train_utils.add_sd3_training_arguments` and
`library/flux_train_utils.add_flux_train_arguments`. Names are without the leading `--`.
Pure data: used to check every flag the command builder emits and every staff extra flag.
"""

LOGGING = frozenset({"console_log_level", "console_log_file", "console_log_simple"})

SD_MODELS = frozenset(
    {"v2", "v_parameterization", "pretrained_model_name_or_path", "tokenizer_cache_dir"}
)

MODEL_SPEC = frozenset(
    {
        "metadata_title",
        "metadata_author",
        "metadata_description",
        "metadata_license",
        "metadata_tags",
    }
)

DATASET = frozenset(
    {
        "train_data_dir", "cache_info", "shuffle_caption", "caption_separator",
        "caption_extension", "caption_extention", "keep_tokens", "keep_tokens_separator",
        "secondary_separator", "enable_wildcard", "caption_prefix", "caption_suffix",
        "color_aug", "flip_aug", "face_crop_aug_range", "random_crop", "debug_dataset",
        "resolution", "cache_latents", "vae_batch_size", "cache_latents_to_disk",
        "skip_cache_check", "enable_bucket", "min_bucket_reso", "max_bucket_reso",
        "bucket_reso_steps", "bucket_no_upscale", "resize_interpolation", "token_warmup_min",
        "token_warmup_step", "alpha_mask", "dataset_class", "caption_dropout_rate",
        "caption_dropout_every_n_epochs", "caption_tag_dropout_rate", "reg_data_dir",
        "in_json", "dataset_repeats",
    }
)  # fmt: skip

TRAINING = frozenset(
    {
        "output_dir", "output_name", "huggingface_repo_id", "huggingface_repo_type",
        "huggingface_path_in_repo", "huggingface_token", "huggingface_repo_visibility",
        "save_state_to_huggingface", "resume_from_huggingface", "async_upload",
        "save_precision", "save_every_n_epochs", "save_every_n_steps", "save_n_epoch_ratio",
        "save_last_n_epochs", "save_last_n_epochs_state", "save_last_n_steps",
        "save_last_n_steps_state", "save_state", "save_state_on_train_end", "resume",
        "train_batch_size", "max_token_length", "mem_eff_attn", "torch_compile",
        "dynamo_backend", "xformers", "sdpa", "vae", "max_train_steps", "max_train_epochs",
        "max_data_loader_n_workers", "persistent_data_loader_workers", "seed",
        "gradient_checkpointing", "gradient_accumulation_steps", "mixed_precision",
        "full_fp16", "full_bf16", "fp8_base", "ddp_timeout", "ddp_gradient_as_bucket_view",
        "ddp_static_graph", "clip_skip", "logging_dir", "log_with", "log_prefix",
        "log_tracker_name", "wandb_run_name", "log_tracker_config", "wandb_api_key",
        "log_config", "noise_offset", "noise_offset_random_strength",
        "multires_noise_iterations", "ip_noise_gamma", "ip_noise_gamma_random_strength",
        "multires_noise_discount", "adaptive_noise_scale", "zero_terminal_snr",
        "min_timestep", "max_timestep", "loss_type", "huber_schedule", "huber_c",
        "lowram", "highvram", "sample_every_n_steps", "sample_at_first",
        "sample_every_n_epochs", "sample_prompts", "sample_sampler", "config_file",
        "output_config", "prior_loss_weight",
    }
)  # fmt: skip

MASKED_LOSS = frozenset({"conditioning_data_dir", "masked_loss"})

DEEPSPEED = frozenset(
    {
        "deepspeed", "zero_stage", "offload_optimizer_device", "offload_optimizer_nvme_path",
        "offload_param_device", "offload_param_nvme_path", "zero3_init_flag",
        "zero3_save_16bit_model", "fp16_master_weights_and_gradients",
    }
)  # fmt: skip

OPTIMIZER = frozenset(
    {
        "optimizer_type", "use_8bit_adam", "use_lion_optimizer", "learning_rate",
        "max_grad_norm", "optimizer_args", "lr_scheduler_type", "lr_scheduler_args",
        "lr_scheduler", "lr_warmup_steps", "lr_scheduler_num_cycles", "lr_scheduler_power",
        "fused_backward_pass",
    }
)  # fmt: skip

CONFIG = frozenset({"dataset_config"})

CUSTOM_TRAIN = frozenset(
    {
        "min_snr_gamma", "scale_v_pred_loss_like_noise_pred", "v_pred_like_loss",
        "debiased_estimation_loss", "weighted_captions",
    }
)  # fmt: skip

TRAIN_NETWORK = frozenset(
    {
        "cpu_offload_checkpointing", "no_metadata", "save_model_as", "unet_lr",
        "text_encoder_lr", "fp8_base_unet", "network_weights", "network_module",
        "network_dim", "network_alpha", "network_dropout", "network_args",
        "network_train_unet_only", "network_train_text_encoder_only", "training_comment",
        "dim_from_weights", "scale_weight_norms", "base_weights", "base_weights_multiplier",
        "no_half_vae", "skip_until_initial_step", "initial_epoch", "initial_step",
        "validation_seed", "validation_split", "validate_every_n_steps",
        "validate_every_n_epochs", "max_validation_steps",
    }
)  # fmt: skip

SDXL = frozenset(
    {
        "cache_text_encoder_outputs",
        "cache_text_encoder_outputs_to_disk",
        "disable_mmap_load_safetensors",
    }
)

DIT = frozenset(
    {
        "cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk",
        "text_encoder_batch_size", "disable_mmap_load_safetensors", "weighting_scheme",
        "logit_mean", "logit_std", "mode_scale", "blocks_to_swap",
    }
)  # fmt: skip

SD3 = frozenset(
    {
        "clip_l", "clip_g", "t5xxl", "save_clip", "save_t5xxl", "t5xxl_device", "t5xxl_dtype",
        "t5xxl_max_token_length", "apply_lg_attn_mask", "apply_t5_attn_mask",
        "clip_l_dropout_rate", "clip_g_dropout_rate", "t5_dropout_rate",
        "pos_emb_random_crop_rate", "enable_scaled_pos_embed", "training_shift",
    }
)  # fmt: skip

FLUX = frozenset(
    {
        "clip_l", "t5xxl", "ae", "t5xxl_max_token_length", "apply_t5_attn_mask",
        "guidance_scale", "timestep_sampling", "sigmoid_scale", "model_prediction_type",
        "discrete_flow_shift", "model_type",
    }
)  # fmt: skip

# Our own CPU demo trainer (`python -m training.demo_trainer`): exactly these.
DEMO = frozenset(
    {
        "dataset_config", "output_dir", "output_name", "max_train_epochs", "network_dim",
        "network_alpha", "learning_rate", "resolution", "train_batch_size",
        "save_every_n_epochs", "sample_prompts", "sample_every_n_epochs", "seed",
    }
)  # fmt: skip

_TRAIN_NETWORK_ALL = (
    LOGGING | SD_MODELS | MODEL_SPEC | DATASET | TRAINING | MASKED_LOSS | DEEPSPEED | OPTIMIZER
) | (CONFIG | CUSTOM_TRAIN | TRAIN_NETWORK)

ACCEPTED_FLAGS: dict[str, frozenset[str]] = {
    "train_network.py": _TRAIN_NETWORK_ALL,
    "sdxl_train_network.py": _TRAIN_NETWORK_ALL | SDXL,
    "sd3_train_network.py": _TRAIN_NETWORK_ALL | DIT | SD3,
    "flux_train_network.py": _TRAIN_NETWORK_ALL | DIT | FLUX,
    "training.demo_trainer": DEMO,
}
