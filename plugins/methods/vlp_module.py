"""The LightningModule that MGCA, ConVIRT and GLoRIA share, and the pretraining driver they all use.

:class:`VisionLanguageModule` holds

* ``img_encoder_q``: the :class:`~medvlp_bench.api.ImageEncoder`, so a ResNet's weights are saved as
  ``img_encoder_q.model.*``, MGCA's release layout, which :func:`medvlp_bench.api.load_encoder_checkpoint` imports;
* ``text_encoder_q``: the :class:`~medvlp_bench.api.TextEncoder` (texts are tokenised inside the step);
* the method's heads, made by the subclass, which computes the losses in :meth:`compute_losses`.

Hyper-parameters saved in every checkpoint: the method, the encoder names, the text encoder's ``vocabulary`` (so
a learnt vocabulary is rebuilt without the corpus, see :meth:`VisionLanguageModule.restore`) and the options.

Optimisation (options of :data:`vlp_method.OPTIMISER_OPTIONS`): AdamW(lr, betas (0.9, 0.999), weight decay) over
all parameters; the learning rate per optimiser step s of S (``trainer.estimated_stepping_batches``), warm-up
W = floor(warmup_fraction * S) steps, peak lr, floor lr_min::

    lr(s) = lr_min + (lr - lr_min) * s / W                                  s < W
    lr(s) = lr_min + (lr - lr_min) * (1 + cos(pi * (s - W) / (S - W))) / 2  s >= W

Logged (averaged over DDP ranks): ``train/<loss>`` per step and epoch, ``train/lr`` per step, ``val/<loss>``
per epoch.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional

import lightning as L
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from medvlp_bench.api import (
    ImageEncoder,
    ImageTextDataModule,
    MedvlpError,
    PretrainContext,
    TextEncoder,
    TextFeatures,
    fit_pretraining,
    safe_load,
)
from medvlp_bench_plugins.methods.contrastive_losses import gather_with_grad, info_nce_loss, local_rank_offset
from medvlp_bench_plugins.methods.vlp_method import vlp_image_encoder

#: Ref's ResNet input: 224 px images are upsampled to 299 px (``reference_resnet_upsample``)
REFERENCE_UPSAMPLE = 299 / 224


def resolve_options(method: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``given``, each value checked against its default's type.

    Unknown names raise :class:`MedvlpError` listing the known ones; ints are accepted where floats are expected,
    lists and tuples where sequences are. Returns a new dict of plain values (it goes into checkpoints).
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise MedvlpError(f"unknown {method} option(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    options = {}
    for name, default in defaults.items():
        value = given.get(name, default)
        if isinstance(default, bool):
            valid = isinstance(value, bool)
        elif isinstance(default, float):
            valid = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if valid else value
        elif isinstance(default, int):
            valid = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, (list, tuple)):
            valid = isinstance(value, (list, tuple)) and len(value) == len(default)
            value = list(value) if valid else value
        else:
            valid = isinstance(value, type(default))
        if not valid:
            raise MedvlpError(f"{method} option {name} must be like {default!r}, not {value!r}")
        options[name] = value
    return options


def warmup_cosine_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """lr(step) / lr of the schedule in the module docstring, with ``min_ratio`` = lr_min / lr."""
    if step < warmup_steps:
        weight = step / warmup_steps
    else:
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        weight = (1 + math.cos(math.pi * progress)) / 2
    return min_ratio + (1 - min_ratio) * weight


@torch.no_grad()
def local_token_dim(encoder: ImageEncoder) -> int:
    """Width C of ``encoder.local_tokens``, read from one evaluation-mode pass over a blank image."""
    was_training = encoder.training
    encoder.eval()
    try:
        blank = torch.zeros(1, 3, encoder.input_size, encoder.input_size)
        return encoder.global_and_local(blank)[1].shape[-1]
    finally:
        encoder.train(was_training)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of (B, T, D) ``states`` where ``mask`` (B, T) is non-zero: (B, D)."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


#: values of the ``report_pooling`` option: the report feature is the [CLS] state (Ref) or the mean of all states
REPORT_POOLINGS = ("cls", "mean")


class EncodedText(NamedTuple):
    """A tokenised batch of texts (``input_ids``, ``attention_mask``, ``is_continuation`` (B, T)) and its features."""

    tokens: dict[str, torch.Tensor]
    features: TextFeatures


class VisionLanguageModule(L.LightningModule):
    """Base of the vision-language pretraining modules (see the module docstring).

    Subclasses set ``method`` and ``default_options``, build their heads after ``super().__init__`` and implement
    :meth:`compute_losses`. ``options`` are checked and completed by :func:`resolve_options`.
    """

    method: str = ""
    default_options: Mapping[str, Any] = {}

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, *, image_encoder_name: str,
                 text_encoder_name: str, options: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.options = resolve_options(self.method, self.default_options, options or {})
        if self.options.get("report_pooling", "cls") not in REPORT_POOLINGS:
            raise MedvlpError(f"{self.method} option report_pooling must be one of {', '.join(REPORT_POOLINGS)}, "
                              f"not {self.options['report_pooling']!r}")
        self.img_encoder_q = image_encoder
        self.text_encoder_q = text_encoder
        vocabulary = getattr(text_encoder, "vocabulary", None)
        self.save_hyperparameters(
            {
                "method": self.method,
                "image_encoder": image_encoder_name,
                "text_encoder": text_encoder_name,
                "vocabulary": list(vocabulary) if vocabulary is not None else None,
                "options": self.options,
            },
            logger=False,
        )

    @classmethod
    def restore(cls, path: Path, build_image_encoder: Callable[[str], ImageEncoder],
                build_text_encoder: Callable[[str, Any, Any], TextEncoder], *,
                trust: bool = False) -> "VisionLanguageModule":
        """The module saved in checkpoint ``path``, rebuilt from its hyper-parameters (no corpus needed).

        ``build_text_encoder(name, vocabulary, corpus)`` receives the saved vocabulary and ``corpus=None``
        (the signature of :class:`medvlp_bench.api.PretrainContext`'s builder). The file is read safely
        (:func:`medvlp_bench.api.safe_load`); every weight must fit.
        """
        checkpoint = safe_load(path, trust=trust)
        hyper = checkpoint["hyper_parameters"]
        module = cls(
            build_image_encoder(hyper["image_encoder"]),
            build_text_encoder(hyper["text_encoder"], hyper["vocabulary"], None),
            image_encoder_name=hyper["image_encoder"],
            text_encoder_name=hyper["text_encoder"],
            options=hyper["options"],
        )
        module.load_state_dict(checkpoint["state_dict"])
        return module

    def image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global (B, C_g) and local (B, N, C_l) image features; with the ``reference_resnet_upsample`` option the
        images (B, 3, s, s) are first resized bilinearly (align_corners=True) to round(s * 299 / 224) px, as Ref
        does for ResNets."""
        if self.options.get("reference_resnet_upsample"):
            side = round(images.shape[-1] * REFERENCE_UPSAMPLE)
            images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=True)
        return self.img_encoder_q.global_and_local(images)

    def encode_text(self, texts: list[str]) -> EncodedText:
        """Tokenise ``texts`` (on the module's device) and run the text encoder."""
        tokens = {name: value.to(self.device) for name, value in self.text_encoder_q.tokenize(texts).items()}
        return EncodedText(tokens, self.text_encoder_q(tokens["input_ids"], tokens["attention_mask"]))

    def report_feature(self, text: EncodedText) -> torch.Tensor:
        """The (B, H) report feature fed to the global text head, by the ``report_pooling`` option: ``"cls"`` the
        last layer's [CLS] state (Ref), ``"mean"`` the mean of the last layer's states over [CLS] ... [SEP]
        (padding excluded). A randomly initialised text tower's [CLS] state barely differs between reports until
        the tower has learnt to gather them into it, while the mean carries every word from the first step."""
        if self.options.get("report_pooling", "cls") == "cls":
            return text.features.cls
        return masked_mean(text.features.tokens, text.tokens["attention_mask"])

    def instance_alignment_loss(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                                temperature: float) -> torch.Tensor:
        """Symmetric InfoNCE of (B, D) normalised embeddings, directions summed (Ref). In training with the
        ``gather_negatives`` option, every rank's batch serves as negatives (gathered with gradients)."""
        if not (self.training and self.options.get("gather_negatives")):
            return info_nce_loss(image_embeddings, text_embeddings, temperature)
        return info_nce_loss(
            image_embeddings, text_embeddings, temperature,
            all_image_embeddings=gather_with_grad(image_embeddings),
            all_text_embeddings=gather_with_grad(text_embeddings),
            rank_offset=local_rank_offset(image_embeddings.shape[0]),
        )

    def compute_losses(self, images: torch.Tensor, texts: list[str]) -> dict[str, torch.Tensor]:
        """Scalar losses of a batch of (B, 3, s, s) normalised images and their B report texts; ``"loss"`` is the
        total that is minimised, the other entries are its parts (logged)."""
        raise NotImplementedError

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, texts = batch
        losses = self.compute_losses(images, list(texts))
        self.log_dict({f"{stage}/{name}": value.detach() for name, value in losses.items()},
                      batch_size=images.shape[0], on_step=stage == "train", on_epoch=True, sync_dist=True)
        return losses["loss"]

    def training_step(self, batch, batch_index: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_index: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self):
        options = self.options
        optimizer = torch.optim.AdamW(self.parameters(), lr=options["learning_rate"], betas=(0.9, 0.999),
                                      weight_decay=options["weight_decay"])
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        factor = partial(
            warmup_cosine_factor,
            warmup_steps=int(options["warmup_fraction"] * total_steps),
            total_steps=total_steps,
            min_ratio=options["min_learning_rate"] / options["learning_rate"],
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}}


def run_pretraining(module_class: type[VisionLanguageModule], context: PretrainContext) -> Path:
    """Pretrain ``module_class`` as ``context`` asks; return the final checkpoint (``out_dir/model.ckpt``).

    Encoders and heads are initialised under ``torch.manual_seed(context.seed)``; a text encoder that learns its
    vocabulary learns it from the training texts (deterministic, so every DDP rank builds the same one).
    Batches come from :class:`medvlp_bench.api.ImageTextDataModule`; training, checkpoints and resume from
    :func:`medvlp_bench.api.fit_pretraining`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        image_encoder = vlp_image_encoder(context.build_image_encoder, context.image_encoder)
        text_encoder = context.build_text_encoder(context.text_encoder, None, list(context.corpus.train["text"]))
        module = module_class(image_encoder, text_encoder, image_encoder_name=context.image_encoder,
                              text_encoder_name=context.text_encoder, options=context.options)
    datamodule = ImageTextDataModule(
        context.corpus, image_encoder, context.image_cache_root, batch_size=context.trainer["batch_size"],
        num_workers=context.trainer.get("num_workers", 0), seed=context.seed,
    )
    return fit_pretraining(module, datamodule, out_dir=context.out_dir, trainer_settings=context.trainer,
                           resume=context.resume, seed=context.seed)
