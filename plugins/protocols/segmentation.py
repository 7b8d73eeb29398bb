"""Segmentation protocol ("segmentation"): a decoder trained on a method's image encoder, scored by Dice.

Reference (MGCA's downstream code): SIIM pneumothorax and RSNA pneumonia (boxes as masks) at 224 px;
ResNet-50 -> ``smp.Unet`` with the encoder loaded from the method's checkpoint and frozen; ViT -> a SETR-style
progressive-upsampling decoder; loss ``10 * focal(gamma 2) - log(soft Dice)``; AdamW lr 5e-4, weight decay 0.05,
batch 8 (SIIM) / 16 (RSNA), 50 epochs; Dice at p > 0.5 with an empty-mask rule.

This implementation:

* Data: images letterboxed to the encoder's input size (resize only, zero padding); masks letterboxed the same way
  (nearest), both cached (:mod:`.segmentation_data`).
* Networks (:mod:`.segmentation_models`): torchvision ResNets -> U-Net with the method's weights; any other encoder
  (ViT, third-party) -> its deepest feature map and the progressive-upsampling decoder. ``hparams["decoder"]``
  (``auto`` | ``unet`` | ``generic``) forces a path; ``linear`` (not the reference's protocol) reads the mask
  linearly from all frozen maps, which scores the maps themselves rather than what a decoder can learn on them.
* Encoder: frozen by default, BatchNorm in eval mode. ``hparams["reference_bn_drift"] = True`` reproduces the
  reference code, which leaves the frozen encoder's BatchNorm in train mode (batch statistics, drifting running
  statistics); ``hparams["freeze_encoder"] = False`` fine-tunes it.
* Feature cache (default on): with a frozen encoder in eval mode and no augmentation, what the frozen part computes
  is stored once per image in float16, so decoder training runs no encoder forward after the first pass.
  U-Net: the ResNet stage maps at strides 4/8/16/32 (ResNet-50 at 224 px: 1,505,280 values = 3.0 MB per image;
  ResNet-18 at 128 px: 122,880 values = 246 kB) while the stride-2 stem (ResNet-50 at 224 px: another 1.6 MB per
  image) is recomputed from the image, about 3 % of a ResNet-50 forward pass. Generic: the deepest map (ViT-B/16 at
  224 px: 768 x 14 x 14 = 301 kB per image). A ResNet-50 cache of the full SIIM splits (about 12,000 images) takes
  about 36 GB; ``hparams["feature_cache"] = False`` turns the cache off. It saves the encoder's forward pass, not
  the decoder's: a U-Net decoder's forward and backward cost about three ResNet-50 forwards, so on CPU a cached
  ResNet-50 U-Net run is about 1.3x faster (``benchmarks/segmentation_cache.py``); the gain grows with the
  encoder's share of the cost (a ViT-B forward is about five times the progressive decoder's).
* Augmentation: the reference trains with ShiftScaleRotate (scale 0.1, rotate 10 degrees, p 0.5), which cached
  features cannot follow. Default: cached features, no augmentation. ``hparams["augment"] = True`` disables the
  cache and augments image and mask jointly on the fly. Both choices are recorded in the run's details.
* Training (Lightning): AdamW over the trainable parameters, at most ``max_epochs`` epochs, a constant learning
  rate as in the reference (``hparams["lr_schedule"] = "cosine"`` anneals it per step to 0 over ``max_epochs``).
  Model selection as in the reference: early stopping (patience ``patience``) and the tested checkpoint both follow
  ``hparams["monitor"]``, ``val_loss`` (default, the reference's choice, lowest wins) or ``val_dice`` (highest
  wins). The validation Dice is a poor selector on small validation sets: the empty-mask rule turns each negative
  image into a 0 or a 1, so it jumps between epochs (synthetic SIIM: 0.23 to 0.88) and stops training early at
  random. The per-epoch validation loss and Dice go into the record's details (``val_history``).
* Metrics (:mod:`.dice`, threshold p > 0.5, values in [0, 1]): ``dice`` (per-image, empty-mask rule, mean over all
  test images; primary), ``dice_positive`` (images with a finding only), ``empty_correct`` (share of images without
  a finding predicted empty), ``dice_reference_batched`` (the reference's mean of per-batch means, test batch
  size = ``batch_size``).
* Per-sample outputs (kind ``segmentation``; test split in table order): ``sample_id``, ``patient_id``, ``dice``
  (N,) float64 per-image Dice with the empty-mask rule, ``truth_empty`` (N,) bool, ``pred_empty`` (N,) bool (no
  pixel with p > 0.5). Every metric above is a function of them: ``dice = mean(dice)``, ``dice_positive =
  mean(dice[~truth_empty])``, ``empty_correct = mean(pred_empty[truth_empty])``.

Heavy libraries (Lightning, segmentation-models-pytorch) are imported when a run starts, so listing plugins stays
light.
"""

from __future__ import annotations

from pathlib import Path

from medvlp_bench.api import (
    OptionSpec,
    ProtocolInputs,
    ProtocolResult,
    ProtocolSpec,
    HeadFitSettings,
    fit_head,
    hookimpl,
    identity_arrays,
    resolved_hparams,
    seed_head_training,
)

#: decoder paths: ``auto`` picks ``unet`` for torchvision ResNets and ``generic`` otherwise
DECODER_PATHS = ("auto", "unet", "generic", "linear")
#: selection metric -> Lightning mode (which direction is better)
MONITOR_MODES = {"val_loss": "min", "val_dice": "max"}
LR_SCHEDULES = ("constant", "cosine")

#: the segmentation protocol's options, with the reference protocol's defaults (SIIM's batch size)
SEGMENTATION_OPTIONS = (
    OptionSpec("lr", 5e-4, "AdamW learning rate of the decoder", float),
    OptionSpec("weight_decay", 0.05, "AdamW weight decay", float),
    OptionSpec("batch_size", 8, "training batch size (also the test batch of dice_reference_batched)", int),
    OptionSpec("max_epochs", 50, "most training epochs", int),
    OptionSpec("patience", 10, "epochs without a better monitored value before training stops", int),
    OptionSpec("freeze_encoder", True, "keep the encoder's weights frozen (False: fine-tune it)", bool),
    OptionSpec("reference_bn_drift", False, "the reference's frozen encoder with BatchNorm in train mode", bool),
    OptionSpec("augment", False, "the reference's ShiftScaleRotate augmentation (implies no feature cache)", bool),
    OptionSpec("feature_cache", True, "cache what the frozen encoder computes once per image", bool),
    OptionSpec("decoder", "auto", "decoder path", str, DECODER_PATHS),
    OptionSpec("monitor", "val_loss", "validation value that selects the checkpoint and stops training", str,
               tuple(MONITOR_MODES)),
    OptionSpec("lr_schedule", "constant", "constant learning rate (the reference) or cosine annealing per step",
               str, LR_SCHEDULES),
    OptionSpec("num_workers", 0, "data-loader worker processes", int),
)


def encoder_mode(hparams) -> str:
    """``trainable`` if ``freeze_encoder`` is off, else ``bn_drift`` with ``reference_bn_drift``, else ``frozen``."""
    if not hparams["freeze_encoder"]:
        return "trainable"
    return "bn_drift" if hparams["reference_bn_drift"] else "frozen"


def validation_history(metrics_csv: Path) -> list[dict]:
    """Per-epoch ``{"epoch", "val_loss", "val_dice"}`` from a Lightning CSVLogger file (rows merged by epoch)."""
    import pandas as pd

    table = pd.read_csv(metrics_csv)
    columns = [name for name in ("val_loss", "val_dice") if name in table]
    per_epoch = table.groupby("epoch")[columns].first().dropna(how="all")
    return [{"epoch": int(epoch), **{name: round(float(row[name]), 6) for name in columns}}
            for epoch, row in per_epoch.iterrows()]


def run(inputs: ProtocolInputs) -> ProtocolResult:
    """Train and test a segmentation decoder for ``inputs.task`` (see module docstring)."""
    import torch
    from torch.utils.data import DataLoader

    from medvlp_bench_plugins.protocols import dice
    from medvlp_bench_plugins.protocols.segmentation_data import AUGMENTATION, bytes_per_image, split_samples
    from medvlp_bench_plugins.protocols.segmentation_losses import DESCRIPTION as LOSS
    from medvlp_bench_plugins.protocols.segmentation_models import build_segmenter
    from medvlp_bench_plugins.protocols.segmentation_module import SegmentationModule

    task, encoder = inputs.task, inputs.encoder
    hp = resolved_hparams(SEGMENTATION_OPTIONS, inputs, protocol="segmentation")
    mode = encoder_mode(hp)
    selection = MONITOR_MODES[hp["monitor"]]
    use_cache = bool(hp["feature_cache"]) and mode == "frozen" and not hp["augment"]
    seed_head_training(inputs.seed)
    segmenter = build_segmenter(encoder, mode, hp["decoder"])
    samples = {
        split: split_samples(inputs, segmenter, split, table, use_cache, bool(hp["augment"]) and split == "train")
        for split, table in inputs.splits.items()
    }

    def loader(split: str) -> DataLoader:
        return DataLoader(samples[split], batch_size=hp["batch_size"], shuffle=split == "train",
                          num_workers=hp["num_workers"])

    module = SegmentationModule(segmenter, encoder.mean, encoder.std, hp["lr"], hp["weight_decay"],
                                hp["lr_schedule"])
    settings = HeadFitSettings(name="segmentation", monitor=hp["monitor"], mode=selection,
                               max_epochs=hp["max_epochs"], patience=hp["patience"], work_dir=Path(inputs.work_dir),
                               label=f"{task.name} decoder", shown=("val_loss", "val_dice"))
    fitted = fit_head(module, loader("train"), loader("val"), settings)
    predictions = fitted.trainer.predict(module, loader("test"), ckpt_path=fitted.best_path)
    scores, positive, predicted = (torch.cat(parts) for parts in zip(*predictions))
    outputs = {**identity_arrays("segmentation", inputs.splits.test), "dice": scores.double().numpy(),
               "truth_empty": (~positive).numpy(), "pred_empty": (~predicted).numpy()}
    train_maps = samples["train"].maps
    return ProtocolResult(
        metrics=dice.summarise_dice(scores, positive, hp["batch_size"]),
        n_train=len(inputs.splits.train),
        n_val=len(inputs.splits.val),
        n_test=len(inputs.splits.test),
        details={
            "hparams": hp,
            "epochs_trained": fitted.epochs_trained,
            "selected_on": f"{hp['monitor']} ({selection})",
            "best_validation_score": fitted.best_score,
            "val_history": validation_history(fitted.metrics_csv),
            "head_training": fitted.describe(),
            **segmenter.describe(),
            "encoder_frozen": mode != "trainable",
            "encoder_batchnorm": {"frozen": "eval (stored statistics)", "bn_drift": "train (reference drift)",
                                  "trainable": "train"}[mode],
            "feature_cache": use_cache,
            "feature_cache_bytes_per_image": bytes_per_image(train_maps) if use_cache else None,
            "augmentation": AUGMENTATION if hp["augment"] else "none",
            "input": f"letterboxed to {encoder.input_size} px (resize only, zero padding)",
            "loss": LOSS,
            "threshold": dice.THRESHOLD,
            "test_batch_size": hp["batch_size"],
            "n_test_positive": int(positive.sum()),
            "metric_definitions": dice.DEFINITIONS,
        },
        outputs=outputs,
    )


@hookimpl
def medvlp_bench_protocols():
    return [
        ProtocolSpec(
            name="segmentation",
            description="U-Net (ResNets) or progressive-upsampling decoder on the encoder; reference loss; Dice",
            run=run,
            options=SEGMENTATION_OPTIONS,
            version="2",
            targets=("mask",),
            metrics=("dice", "dice_positive", "empty_correct", "dice_reference_batched"),
        )
    ]
