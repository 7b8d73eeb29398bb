"""Vision Transformer image encoders built with timm (parameter names are timm's, without ``head``).

* ``vit_b16``: ViT-B/16 (timm ``vit_base_patch16_224``: 12 layers, 12 heads, width 768), 224 px: the paper's
  profile. ImageNet weights: DeiT-base (``deit_base_patch16_224``, the reference's starting point).
* ``vit_tiny``: ViT-Ti/16 (timm ``vit_tiny_patch16_224``: 12 layers, 3 heads, width 192) at 128 px (8 x 8 patches):
  the CPU profile. ImageNet weights: timm's default ``vit_tiny_patch16_224`` weights (position embeddings resampled).

Interface: global = [CLS] token after the final LayerNorm; local tokens = the patch tokens after the final
LayerNorm, (B, (s/16)^2, width); one feature map = the patch tokens as (B, width, s/16, s/16) at stride 16.
Normalisation: mean = std = 0.5 per channel (as the reference's ViT pipeline).

ImageNet weights are read from the local Hugging Face cache only (``huggingface_hub.try_to_load_from_cache``);
nothing is downloaded.
"""

from __future__ import annotations

import torch

from medvlp_bench.api import ImageEncoder, ImageEncoderSpec, WeightsNotFoundError, hookimpl

PATCH = 16


class ViTEncoder(ImageEncoder):
    """A timm VisionTransformer (``self.model``, no classifier head) exposed through the encoder interface."""

    def __init__(self, arch: str, timm_name: str, input_size: int):
        super().__init__()
        import timm

        self.model = timm.create_model(timm_name, pretrained=False, num_classes=0, img_size=input_size)
        self.arch = arch
        self.timm_name = timm_name
        self.input_size = input_size
        self.mean = self.std = (0.5, 0.5, 0.5)
        self.global_dim = self.model.embed_dim
        self.map_channels = (self.model.embed_dim,)
        self.map_strides = (PATCH,)

    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_and_local(x)[0]

    def local_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_and_local(x)[1]

    def global_and_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both from one pass: the [CLS] token and the patch tokens."""
        tokens = self.model.forward_features(x)
        return tokens[:, 0], tokens[:, self.model.num_prefix_tokens :]

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.local_tokens(x)
        side = x.shape[-1] // PATCH
        return [tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)]


def _imagenet_loader(weights_name: str):
    def load(encoder: ImageEncoder) -> None:
        import timm
        from huggingface_hub import try_to_load_from_cache
        from safetensors.torch import load_file

        repo = timm.models.get_pretrained_cfg(weights_name).hf_hub_id
        path = try_to_load_from_cache(repo, "model.safetensors")
        if not isinstance(path, str):
            raise WeightsNotFoundError(
                f"ImageNet weights for {encoder.arch} ({repo}) are not in the local Hugging Face cache. Put them "
                f"there once, while online: huggingface-cli download {repo} model.safetensors (or set HF_HOME to "
                "a cache that has them). medvlp-bench never downloads weights by itself."
            )
        state = {k: v for k, v in load_file(path).items() if not k.startswith("head")}
        if "pos_embed" in state and state["pos_embed"].shape != encoder.model.pos_embed.shape:
            from timm.layers import resample_abs_pos_embed

            side = encoder.input_size // PATCH
            state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], (side, side), num_prefix_tokens=1)
        encoder.model.load_state_dict(state, strict=True)

    return load


@hookimpl
def medvlp_bench_image_encoders():
    return [
        ImageEncoderSpec(
            name="vit_b16",
            description="ViT-B/16 (timm), 224 px: the paper's ViT profile",
            build=lambda: ViTEncoder("vit_b16", "vit_base_patch16_224", 224),
            load_imagenet=_imagenet_loader("deit_base_patch16_224"),
        ),
        ImageEncoderSpec(
            name="vit_tiny",
            description="ViT-Ti/16 (timm), 128 px: the CPU ViT profile",
            build=lambda: ViTEncoder("vit_tiny", "vit_tiny_patch16_224", 128),
            load_imagenet=_imagenet_loader("vit_tiny_patch16_224"),
        ),
    ]
