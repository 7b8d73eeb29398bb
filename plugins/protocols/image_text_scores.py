"""What the zero-shot and retrieval protocols share: prompt files, and image-text score matrices.

Prompt files: a JSON object mapping each class name to a non-empty list of prompt strings, e.g.
``{"Edema": ["mild pulmonary edema.", ...], ...}``. An option value ``package:relative/path`` names a file shipped
in a Python package (the task plugins' own prompts); any other value is a file path. Records keep the file's
sha256 (:func:`file_sha256`).

Scores (:func:`score_matrix`): images are prepared as for every protocol (longer side resized to
``round(input_size * 256 / 224)``, zero-padded, centre crop ``input_size``, ``(v / 255 - mean) / std``) and
embedded in batches; texts likewise. ``similarity="embedding"`` scores the cosine of the L2-normalised
embeddings; ``"auto"`` uses the model's own score when it has one (``ImageTextModel.own_similarity``), else the
cosine. :func:`class_scores` turns prompts into class scores: with the cosine, the class embedding is the mean of
its prompts' embeddings, renormalised to unit length, ``c_k = normalise(mean_p t_kp)`` and ``score_ik = v_i . c_k``;
with a model's own score, the class score is the mean of its prompts' scores.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from medvlp_bench.api import DataError, ImageTextModel, model_input, prepare_images, prepared_side, preferred_device

SIMILARITIES = ("auto", "embedding")


def resolve_prompts(value: str) -> Path:
    """The prompt file named by an option value (``package:relative/path`` or a path)."""
    if not value:
        raise DataError("this task has no default prompts: pass --option prompts=FILE (a JSON object class -> "
                        "list of prompts)")
    package, separator, relative = value.partition(":")
    if separator and not Path(value).exists() and "/" not in package:
        return Path(str(importlib.resources.files(package).joinpath(relative)))
    return Path(value)


def load_prompts(path: Path) -> dict[str, list[str]]:
    """The prompts of a JSON prompt file (module docstring); raises DataError naming the file and the problem."""
    try:
        prompts = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError("prompt file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read the prompt file as JSON ({error})", file=str(path)) from None
    if not isinstance(prompts, dict) or not prompts:
        raise DataError("a prompt file must hold a JSON object: class name -> list of prompts", file=str(path))
    for name, texts in prompts.items():
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise DataError(f"class {name!r}: expected a non-empty list of non-empty strings", file=str(path))
    return prompts


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def selection_sha256(sample_ids: Sequence[str]) -> str:
    """sha256 of the sample ids in order, one per line (the evaluated selection)."""
    return hashlib.sha256("".join(f"{sample_id}\n" for sample_id in sample_ids).encode()).hexdigest()


def patient_ids(table: pd.DataFrame) -> np.ndarray:
    """The table's ``patient_id`` column, or its ``sample_id`` where it has none, as a numpy string array."""
    column = "patient_id" if "patient_id" in table.columns else "sample_id"
    return np.array(table[column].astype(str).tolist(), dtype=str)


def sample_ids(table: pd.DataFrame) -> np.ndarray:
    """The table's ``sample_id`` column as a numpy string array."""
    return np.array(table["sample_id"].astype(str).tolist(), dtype=str)


def uses_own_similarity(model: ImageTextModel, similarity: str) -> bool:
    if similarity not in SIMILARITIES:
        raise DataError(f"option similarity must be one of {', '.join(SIMILARITIES)}, not {similarity!r}")
    return similarity == "auto" and model.own_similarity


@torch.inference_mode()
def image_features(model: ImageTextModel, table: pd.DataFrame, cache_dir: Path, batch_size: int, *,
                   own_similarity: bool, label: str) -> list:
    """Per batch of ``table``'s images (in order): the model's image features (own score) or embeddings."""
    images, _ = prepare_images(table, prepared_side(model.input_size), Path(cache_dir) / "images", label=label)
    device = preferred_device()
    model.to(device).eval()
    embed: Callable = model.image_features if own_similarity else model.embed_images
    return [embed(model_input(torch.from_numpy(np.array(images[start:start + batch_size])).to(device), model))
            for start in range(0, len(images), batch_size)]


@torch.inference_mode()
def text_embeddings(model: ImageTextModel, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """(T, D) normalised embeddings of ``texts``, embedded ``batch_size`` at a time."""
    return torch.cat([model.embed_texts(list(texts[start:start + batch_size]))
                      for start in range(0, len(texts), batch_size)])


@torch.inference_mode()
def score_matrix(model: ImageTextModel, images: list, texts: Sequence[str], batch_size: int, *,
                 own_similarity: bool) -> torch.Tensor:
    """(N, T) float64 scores of every image batch in ``images`` (from :func:`image_features`) against ``texts``."""
    if not own_similarity:
        text = text_embeddings(model, texts, batch_size)
        return torch.cat([batch @ text.T for batch in images]).double().cpu()
    columns = []
    for start in range(0, len(texts), batch_size):
        text = model.text_features(list(texts[start:start + batch_size]))
        columns.append(torch.cat([model.similarity(batch, text) for batch in images]))
    return torch.cat(columns, dim=1).double().cpu()


def averaged_class_embeddings(prompt_embeddings: torch.Tensor, prompt_class: Sequence[int],
                              num_classes: int) -> torch.Tensor:
    """(K, D): ``normalise(mean of the prompt embeddings of class k)`` for k < num_classes."""
    index = torch.as_tensor(prompt_class, device=prompt_embeddings.device)
    sums = prompt_embeddings.new_zeros(num_classes, prompt_embeddings.shape[1]).index_add_(0, index,
                                                                                           prompt_embeddings)
    counts = torch.bincount(index, minlength=num_classes).clamp(min=1).to(sums.dtype)
    return F.normalize(sums / counts[:, None], dim=-1)


@torch.inference_mode()
def class_scores(model: ImageTextModel, images: list, class_prompts: Sequence[Sequence[str]], batch_size: int, *,
                 own_similarity: bool) -> torch.Tensor:
    """(N, K) float64 class scores (module docstring) of the image batches against K classes' prompts."""
    texts = [text for prompts in class_prompts for text in prompts]
    owner = [k for k, prompts in enumerate(class_prompts) for _ in prompts]
    if own_similarity:
        per_prompt = score_matrix(model, images, texts, batch_size, own_similarity=True)
        index = torch.as_tensor(owner)
        sums = per_prompt.new_zeros(len(per_prompt), len(class_prompts)).index_add_(1, index, per_prompt)
        return sums / torch.bincount(index, minlength=len(class_prompts)).to(sums.dtype)
    classes = averaged_class_embeddings(text_embeddings(model, texts, batch_size), owner, len(class_prompts))
    return torch.cat([batch @ classes.T for batch in images]).double().cpu()
