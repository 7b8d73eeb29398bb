"""Image-text models from checkpoints: the harness's own (``model.ckpt`` of ``medvlp-bench pretrain``) and the
authors' released layouts of MGCA, ConVIRT and GLoRIA.

Own checkpoints are recognised by their hyper-parameters (``method``, ``image_encoder``, ``text_encoder``,
``vocabulary``, ``options``, written by ``vlp_module.VisionLanguageModule``): the training module is rebuilt from
them and every weight must fit; the model then uses exactly the modules pretraining trained.

Released layouts (as the authors' code names its modules; keys below the prefix are torchvision / timm names for
the image backbone and Hugging Face ``BertModel`` names for the text tower):

============  ==========================================  ================================================
method        image side                                  text side
============  ==========================================  ================================================
``mgca``      ``img_encoder_q.model.*``,                  ``text_encoder_q.model.{embeddings,encoder}.*``,
              ``img_encoder_q.global_embed.head.*``        ``text_encoder_q.global_embed.head.*``
``convirt``   ``img_encoder.model.*``,                    ``text_encoder.model.*``,
              ``img_encoder.global_embed.head.*``          ``text_encoder.global_embed.head.*``
``gloria``    ``gloria.img_encoder.model.*``,             ``gloria.text_encoder.model.*``
              ``gloria.img_encoder.global_embedder.*``,
              ``gloria.img_encoder.local_embedder.weight``
============  ==========================================  ================================================

The projection heads are ``Linear - BN - ReLU - Linear - BN(affine=False)`` (``head.0, 1, 3, 4``; widths read
from the weights); GLoRIA's local embedder is a bias-free 1x1 convolution (read as a linear map). The text tower
is a ``BertModel`` shaped from the weights (vocabulary, width, layers, feed-forward width; 64-wide attention heads,
BERT's convention) with the Bio_ClinicalBERT tokenizer read from the local Hugging Face cache (never downloaded;
its vocabulary must match the checkpoint's). MGCA's and ConVIRT's text towers (one code base) have no token-type
embedding and give every token position 0; they are loaded with the text encoder's ``reference_position_quirk``
and [CLS] pooling, as they were trained. GLoRIA's report embedding is the mean of the last layer's token states and
its words the summed word pieces of that layer (GLoRIA's own code sums the last four layers; the text-encoder
interface gives the last one). Keys of the file outside these are reported as unused on stderr.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Mapping

import torch
from torch import nn

from medvlp_bench.api import CheckpointLayout, MedvlpError, MethodContext, WeightsNotFoundError, safe_load
from medvlp_bench_plugins.methods.image_text_models import GloriaImageTextModel, ProjectedImageTextModel
from medvlp_bench_plugins.methods.vlp_method import load_image_encoder, vlp_image_encoder

#: each method's released layout: (image backbone prefix, image head prefix, text tower prefix, text head prefix)
RELEASE_PREFIXES = {
    "mgca": ("img_encoder_q.model.", "img_encoder_q.global_embed.", "text_encoder_q.model.",
             "text_encoder_q.global_embed."),
    "convirt": ("img_encoder.model.", "img_encoder.global_embed.", "text_encoder.model.",
                "text_encoder.global_embed."),
    "gloria": ("gloria.img_encoder.model.", "gloria.img_encoder.", "gloria.text_encoder.model.", None),
}
BERT_HEAD_WIDTH = 64


def state_dict_of(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: its ``state_dict`` entry, or the mapping itself."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise MedvlpError("the checkpoint holds no state dict")
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def is_own_checkpoint(checkpoint: Any, method: str) -> bool:
    hyper = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    return isinstance(hyper, Mapping) and hyper.get("method") == method and "text_encoder" in hyper


def text_encoder_builder(name: str):
    """The builder ``(vocabulary, corpus) -> TextEncoder`` of a text encoder of this plugin package."""
    from medvlp_bench_plugins.encoders import bert_text

    builders = {"tiny_bert": bert_text.build_tiny_bert, "bio_clinicalbert": bert_text.build_bio_clinicalbert,
                "minilm": bert_text.build_minilm}
    if name not in builders:
        raise MedvlpError(f"the checkpoint's text encoder {name!r} is not one of {', '.join(sorted(builders))}")
    return builders[name]


def _module_class(method: str):
    if method == "mgca":
        from medvlp_bench_plugins.methods.mgca_module import MGCAModule

        return MGCAModule
    if method == "convirt":
        from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule

        return ConVIRTModule
    from medvlp_bench_plugins.methods.gloria_module import GloriaModule

    return GloriaModule


def from_own_checkpoint(checkpoint: Mapping, context: MethodContext, method: str):
    """The image-text model of a checkpoint written by this harness's pretraining of ``method``."""
    hyper = checkpoint["hyper_parameters"]
    if hyper["image_encoder"] != context.encoder:
        raise MedvlpError(f"the {method} checkpoint was pretrained with image encoder {hyper['image_encoder']!r}, "
                          f"not {context.encoder!r}: pass --encoder {hyper['image_encoder']}")
    module = _module_class(method)(
        vlp_image_encoder(context.build_encoder, hyper["image_encoder"]),
        text_encoder_builder(hyper["text_encoder"])(hyper["vocabulary"], None),
        image_encoder_name=hyper["image_encoder"], text_encoder_name=hyper["text_encoder"],
        options=hyper["options"],
    )
    module.load_state_dict(checkpoint["state_dict"])
    options = module.options
    upsample = bool(options.get("reference_resnet_upsample"))
    if method == "gloria":
        return GloriaImageTextModel(
            module.img_encoder_q, module.text_encoder_q, module.image_embedders,
            region_attention_scale=options["region_attention_scale"], word_match_scale=options["word_match_scale"],
            aggregation=options["word_aggregation"], resnet_upsample=upsample, embedding_norms=module.embedding_norms,
        )
    return ProjectedImageTextModel(
        module.img_encoder_q, module.text_encoder_q, module.global_image_head, module.global_text_head,
        embedding_dim=options["embedding_dim"], report_pooling=options.get("report_pooling", "cls"),
        resnet_upsample=upsample,
    )


def _under(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def _require(state: Mapping[str, torch.Tensor], keys: list[str], prefix: str, method: str) -> None:
    missing = [prefix + key for key in keys if key not in state]
    if missing:
        raise MedvlpError(f"the {method} checkpoint lacks {', '.join(missing[:4])}"
                          f"{' ...' if len(missing) > 4 else ''} (its released layout)")


def projection_head(state: Mapping[str, torch.Tensor], prefix: str, method: str) -> nn.Module:
    """A ``GlobalProjectionHead`` shaped and filled from ``{prefix}head.{0,1,3,4}.*``."""
    from medvlp_bench_plugins.methods.vlp_heads import GlobalProjectionHead

    weights = _under(state, prefix)
    _require(weights, ["head.0.weight", "head.3.weight", "head.4.running_mean"], prefix, method)
    hidden, in_dim = weights["head.0.weight"].shape
    head = GlobalProjectionHead(in_dim, hidden, weights["head.3.weight"].shape[0])
    head.load_state_dict({key: value for key, value in weights.items() if key.startswith("head.")}, strict=False)
    _require(weights, [key for key in head.state_dict() if not key.endswith("num_batches_tracked")], prefix, method)
    return head


def bio_clinicalbert_tokenizer():
    """Bio_ClinicalBERT's tokenizer from the local Hugging Face cache (raises WeightsNotFoundError if absent)."""
    from transformers import AutoTokenizer

    from medvlp_bench_plugins.encoders.bert_text import BIO_CLINICALBERT, hf_hub_cache

    cache = hf_hub_cache()
    try:
        return AutoTokenizer.from_pretrained(BIO_CLINICALBERT, local_files_only=True, cache_dir=cache).backend_tokenizer
    except OSError as error:
        raise WeightsNotFoundError(
            f"the released text tower needs the Bio_ClinicalBERT tokenizer ({BIO_CLINICALBERT}), which is not in the "
            f"local Hugging Face cache {cache}. Download it once while online: `huggingface-cli download "
            f"{BIO_CLINICALBERT}` (or set HF_HOME / HF_HUB_CACHE to a cache that holds it); nothing is downloaded "
            f"at run time."
        ) from error


def released_text_tower(state: Mapping[str, torch.Tensor], prefix: str, method: str, *, position_quirk: bool):
    """A ``BertTextEncoder`` shaped from the BERT weights under ``prefix`` (see the module docstring)."""
    from transformers import BertConfig, BertModel

    from medvlp_bench_plugins.encoders.bert_text import BertTextEncoder

    weights = _under(state, prefix)
    _require(weights, ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                       "encoder.layer.0.intermediate.dense.weight"], prefix, method)
    vocab, hidden = weights["embeddings.word_embeddings.weight"].shape
    layers = 1 + max(int(match.group(1)) for key in weights if (match := re.match(r"encoder\.layer\.(\d+)\.", key)))
    tokenizer = bio_clinicalbert_tokenizer()
    if tokenizer.get_vocab_size() != vocab:
        raise MedvlpError(f"the {method} checkpoint's text tower has {vocab} word embeddings, the Bio_ClinicalBERT "
                          f"tokenizer {tokenizer.get_vocab_size()} tokens")
    config = BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // BERT_HEAD_WIDTH),
        intermediate_size=weights["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=weights["embeddings.position_embeddings.weight"].shape[0],
        attn_implementation="eager",
    )
    bert = BertModel(config, add_pooling_layer=False)
    if position_quirk and "embeddings.token_type_embeddings.weight" not in weights:
        weights["embeddings.token_type_embeddings.weight"] = torch.zeros_like(
            bert.embeddings.token_type_embeddings.weight)
    wanted = [key for key in bert.state_dict() if not key.endswith("position_ids")]
    _require(weights, wanted, prefix, method)
    bert.load_state_dict({key: weights[key] for key in wanted}, strict=False)
    return BertTextEncoder(bert, tokenizer, "bio_clinicalbert", max_length=min(112, config.max_position_embeddings),
                           reference_position_quirk=position_quirk, source=f"{method} release checkpoint")


def _gloria_embedders(state: Mapping[str, torch.Tensor], prefix: str, global_dim: int, local_dim: int):
    from medvlp_bench_plugins.methods.vlp_heads import GloriaImageEmbedders

    weights = _under(state, prefix)
    _require(weights, ["global_embedder.weight", "global_embedder.bias", "local_embedder.weight"], prefix, "gloria")
    local = weights["local_embedder.weight"]
    embedders = GloriaImageEmbedders(global_dim, local_dim, weights["global_embedder.weight"].shape[0])
    embedders.load_state_dict({
        "global_embedder.weight": weights["global_embedder.weight"],
        "global_embedder.bias": weights["global_embedder.bias"],
        "local_embedder.weight": local.reshape(local.shape[0], -1),
    })
    return embedders


def _report_unused(state: Mapping[str, torch.Tensor], used_prefixes: list[str], method: str) -> None:
    unused = sorted(key for key in state if not key.startswith(tuple(used_prefixes)))
    if unused:
        print(f"medvlp-bench: {method}: {len(unused)} checkpoint tensor(s) not used by the image-text model, e.g. "
              f"{', '.join(unused[:3])}", file=sys.stderr)


def from_release(state: Mapping[str, torch.Tensor], context: MethodContext, method: str):
    """The image-text model of a checkpoint in ``method``'s released layout (module docstring)."""
    from medvlp_bench_plugins.methods.vlp_module import local_token_dim

    backbone, image_head, text_tower, text_head = RELEASE_PREFIXES[method]
    image_encoder = load_image_encoder(context, method, (CheckpointLayout(f"{method} release", (backbone,)),))
    if method == "gloria":
        embedders = _gloria_embedders(state, image_head, image_encoder.global_dim, local_token_dim(image_encoder))
        text_encoder = released_text_tower(state, text_tower, method, position_quirk=False)
        _report_unused(state, [backbone, image_head + "global_embedder.", image_head + "local_embedder.",
                               text_tower], method)
        model = GloriaImageTextModel(image_encoder, text_encoder, embedders)
    else:
        image_projection = projection_head(state, image_head, method)
        text_projection = projection_head(state, text_head, method)
        text_encoder = released_text_tower(state, text_tower, method, position_quirk=True)
        _report_unused(state, [backbone, image_head + "head.", text_tower, text_head + "head."], method)
        model = ProjectedImageTextModel(image_encoder, text_encoder, image_projection, text_projection,
                                        embedding_dim=image_projection.head[3].out_features, report_pooling="cls")
    model.weights_report = image_encoder.weights_report
    return model


def load_method_image_text_model(context: MethodContext, method: str):
    """``method``'s image-text model from ``context.checkpoint``: its own layout or the authors' release."""
    if context.checkpoint is None:
        raise MedvlpError(f"method {method!r} needs weights: pass --checkpoint PATH or pretrain first "
                          f"(medvlp-bench pretrain --method {method})")
    checkpoint = safe_load(context.checkpoint, trust=context.trust_checkpoint)
    model = (from_own_checkpoint(checkpoint, context, method) if is_own_checkpoint(checkpoint, method)
             else from_release(state_dict_of(checkpoint), context, method))
    return model.eval()
