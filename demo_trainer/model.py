"""The torch side of the demo trainer: a tiny frozen denoiser, LoRA adapters, samples.

Imported only by ``demo_trainer.cli.main`` (``import torch`` costs seconds).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from safetensors.torch import save_file
from torch import nn

from sdscripts.lora_file import write_metadata

TIME_FEATURES = 16


class MidBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return h + self.conv2(F.silu(self.conv1(F.silu(h))))


class TinyDenoiser(nn.Module):
    """A noise predictor conditioned on a caption embedding and the noise level.

    It works at half resolution inside (a strided conv in, nearest upsampling out) so that a
    demo run stays fast on two busy CPU cores.
    """

    def __init__(self, vocab: int, embed_dim: int, channels: int) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, embed_dim)
        self.time_proj = nn.Linear(TIME_FEATURES, channels)
        self.cond_proj = nn.Linear(embed_dim, channels)
        self.conv_in = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.mid_block = MidBlock(channels)
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)

    def encode(self, token_lists: list[list[int]]) -> torch.Tensor:
        """Embed captions (lists of token ids) as the mean of their token embeddings."""
        rows = [self.token_embedding(torch.tensor(ids)).mean(dim=0) for ids in token_lists]
        return torch.stack(rows)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predict the noise in x at noise level t (0..1) for caption embedding cond."""
        freqs = torch.arange(TIME_FEATURES // 2, dtype=torch.float32)
        angles = t[:, None] * (2.0**freqs)[None, :] * math.pi
        time_features = torch.cat([angles.sin(), angles.cos()], dim=1)
        h = self.conv_in(x)
        h = h + (self.cond_proj(cond) + self.time_proj(time_features))[:, :, None, None]
        h = self.mid_block(h)
        h = F.interpolate(F.silu(h), size=x.shape[-2:], mode="nearest")
        return self.conv_out(h)


class LoRAModule(nn.Module):
    """A low-rank adapter added to a frozen Linear or Conv2d, as sd-scripts' networks.lora."""

    def __init__(self, lora_name: str, base: nn.Module, dim: int, alpha: float) -> None:
        super().__init__()
        self.lora_name = lora_name
        if isinstance(base, nn.Conv2d):
            self.lora_down = nn.Conv2d(
                base.in_channels, dim, base.kernel_size, base.stride, base.padding, bias=False
            )
            self.lora_up = nn.Conv2d(dim, base.out_channels, 1, bias=False)
        else:
            self.lora_down = nn.Linear(base.in_features, dim, bias=False)
            self.lora_up = nn.Linear(dim, base.out_features, bias=False)
        self.alpha = float(alpha)
        self.scale = self.alpha / dim
        self.org_forward = base.forward
        base.forward = self.forward
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform down, zero up: the adapter starts as a no-op."""
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapter's weights."""
        return [self.lora_down.weight, self.lora_up.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen output plus the scaled low-rank update."""
        return self.org_forward(x) + self.lora_up(self.lora_down(x)) * self.scale


def build_denoiser(seed: int, vocab: int, embed_dim: int, channels: int) -> TinyDenoiser:
    """Build the frozen random "base model" (the same for every run)."""
    torch.manual_seed(seed)
    model = TinyDenoiser(vocab, embed_dim, channels)
    model.requires_grad_(False)
    return model


def inject_lora(model: TinyDenoiser, dim: int, alpha: float) -> dict[str, LoRAModule]:
    """Attach an adapter to every Linear/Conv2d; key by sd-scripts name (lora_unet_…)."""
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | nn.Conv2d)
    ]
    adapters = {}
    for name, module in targets:
        lora_name = "lora_unet_" + name.replace(".", "_")
        adapters[lora_name] = LoRAModule(lora_name, module, dim, alpha)
    return adapters


def load_images(paths: list[Path], width: int, height: int) -> torch.Tensor:
    """Load images as an [N, 3, H, W] tensor in [-1, 1], centre-cropped to the size."""
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            image = ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC)
            arrays.append(np.asarray(image, dtype=np.float32))
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return stacked / 127.5 - 1.0


def alpha_bar(t: torch.Tensor) -> torch.Tensor:
    """Cosine noise schedule: the signal fraction at noise level t."""
    return torch.cos(t.clamp(0.0, 0.999) * math.pi / 2) ** 2


def train_step(
    model: TinyDenoiser,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    captions: list[list[int]],
    generator: torch.Generator,
) -> float:
    """One noise-prediction MSE step on a batch; return the loss."""
    noise = torch.randn(images.shape, generator=generator)
    t = torch.rand(images.shape[0], generator=generator)
    ab = alpha_bar(t)[:, None, None, None]
    noisy = ab.sqrt() * images + (1 - ab).sqrt() * noise
    prediction = model(noisy, t, model.encode(captions))
    loss = F.mse_loss(prediction, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item())


@torch.no_grad()
def generate(
    model: TinyDenoiser,
    token_ids: list[int],
    seed: int,
    width: int,
    height: int,
    steps: int,
    path: Path,
) -> None:
    """Denoise seeded noise with DDIM steps and save a PNG."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, 3, height, width), generator=generator)
    cond = model.encode([token_ids])
    levels = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        ab, ab_next = alpha_bar(levels[i]), alpha_bar(levels[i + 1])
        eps = model(x, levels[i].reshape(1), cond)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0)
    Image.fromarray(pixels.numpy()).save(path)


def save_lora(adapters: dict[str, LoRAModule], path: str, metadata: dict[str, str]) -> None:
    """Write the adapters with sd-scripts keys (.lora_down.weight, .lora_up.weight, .alpha)."""
    tensors = {}
    for name, module in adapters.items():
        tensors[f"{name}.lora_down.weight"] = module.lora_down.weight.detach().contiguous()
        tensors[f"{name}.lora_up.weight"] = module.lora_up.weight.detach().contiguous()
        tensors[f"{name}.alpha"] = torch.tensor(module.alpha)
    save_file(tensors, path, metadata)
    # safetensors writes the metadata in hash-map order, different in every process: the
    # canonical header makes the same training give the same bytes.
    write_metadata(path, metadata)
