"""Image-report pairs for pretraining, read from the prepared-image cache.

Each split's images are prepared once (:mod:`medvlp_bench.data.image_cache`) at
``side = round(input_size * 256 / 224)`` px (the reference resizes to 256 and crops 224). Training samples take a
random ``input_size`` crop, validation samples the centre crop (no flips: laterality is in the reports); pixels
become ``(v / 255 - mean_c) / std_c`` on three identical channels. A sample is ``(image, text)``; a batch is
``(images (B, 3, s, s), list of B texts)``, tokenised by the method's text encoder.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medvlp_bench.data.image_cache import prepare_images, prepared_side
from medvlp_bench.encoder import ImageEncoder
from medvlp_bench.protocols.feature_cache import normalise
from medvlp_bench.specs import SplitTables


class ImageTextDataset(Dataset):
    """Pairs of (normalised image crop, report text) over a prepared (N, side, side) uint8 array."""

    def __init__(self, images: np.ndarray, texts: list[str], encoder: ImageEncoder, train: bool, seed: int = 0):
        self.images, self.texts, self.encoder, self.train = images, texts, encoder, train
        self.size = encoder.input_size
        self.generator = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int):
        side = self.images.shape[-1]
        if self.train:
            top, left = self.generator.integers(0, side - self.size + 1, size=2)
        else:
            top = left = (side - self.size) // 2
        crop = torch.from_numpy(np.array(self.images[index, top : top + self.size, left : left + self.size]))
        return normalise(crop[None], self.encoder.mean, self.encoder.std)[0], self.texts[index]


class ImageTextDataModule(L.LightningDataModule):
    """Train / val loaders of a corpus for an image encoder (images prepared into ``cache_root``)."""

    def __init__(self, corpus: SplitTables, encoder: ImageEncoder, cache_root: Path, batch_size: int,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.corpus, self.encoder, self.cache_root = corpus, encoder, Path(cache_root)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.datasets: dict[str, ImageTextDataset] = {}

    def prepare_data(self) -> None:
        for name in ("train", "val"):
            self._images(name)

    def _images(self, name: str) -> np.ndarray:
        table = getattr(self.corpus, name)
        side = prepared_side(self.encoder.input_size)
        return prepare_images(table, side, self.cache_root, label=f"corpus {name}")[0]

    def setup(self, stage: str | None = None) -> None:
        for name in ("train", "val"):
            table = getattr(self.corpus, name)
            self.datasets[name] = ImageTextDataset(
                self._images(name), list(table["text"]), self.encoder, train=name == "train", seed=self.seed
            )

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle, drop_last=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
