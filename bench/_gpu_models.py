"""The GPU benchmark's models: real architectures from their configs, random weights, and
their inputs built without the hub.

Each model is built with ``from_config`` (no download): the numbers a random model gives
are the real model's, since generation with ``min_new_tokens == max_new_tokens`` costs the
same whatever the tokens say. Token ids only matter for their count: the prompt's text is
stood in for by filler ids of about the length the real tokenizer gives, around the image
placeholders the real processor would insert (one per 2x2 merged 14-pixel patch). Images go
through the model's own PIL image processor (no torchvision needed); where that class is
missing, :func:`patchify` computes the same ``pixel_values``/``image_grid_thw`` itself.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

# PaddleOCR-VL-0.9B: huggingface.co/PaddlePaddle/PaddleOCR-VL, config.json (main). The sizes
# are those transformers' PaddleOCRVLConfig takes as its defaults "in the style of"
# that checkpoint (NaViT-style SigLIP encoder, 27 layers x 1152; ERNIE-4.5-0.3B decoder, 18
# layers x 1024, GQA 16/2, head 128); the special token ids are the hub file's.
PADDLEOCR_VL_CONFIG: dict[str, Any] = {
    "architectures": ["PaddleOCRVLForConditionalGeneration"],
    "model_type": "paddleocr_vl",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 18,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
    "use_bias": False,
    "vocab_size": 103424,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "image_token_id": 100295,
    "video_token_id": 101307,
    "vision_start_token_id": 101305,
    "vision_end_token_id": 101306,
    "tie_word_embeddings": True,  # as transformers 5 builds it: 0.80B parameters
    "torch_dtype": "bfloat16",
    "vision_config": {
        "model_type": "paddleocr_vl_vision",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "num_channels": 3,
        "image_size": 384,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "hidden_act": "gelu_pytorch_tanh",
        "layer_norm_eps": 1e-06,
        "attention_dropout": 0.0,
    },
}

# Nanonets-OCR-s is a fine-tune of Qwen2.5-VL-3B-Instruct and keeps its architecture: this
# is huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct, config.json (as quoted in public code).
QWEN25_VL_3B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "model_type": "qwen2_5_vl",
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 128000,
    "max_window_layers": 70,
    "num_attention_heads": 16,
    "num_hidden_layers": 36,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 151936,
}

# --tiny: the same architectures a few layers deep and narrow, for a smoke run on the CPU.
TINY_VOCAB = 512
TINY_IDS = {
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "image_token_id": TINY_VOCAB - 4,
    "video_token_id": TINY_VOCAB - 3,
    "vision_start_token_id": TINY_VOCAB - 2,
    "vision_end_token_id": TINY_VOCAB - 1,
}
TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": TINY_VOCAB,
    "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
    **TINY_IDS,
}
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "paddleocr_vl": {
        **TINY_TEXT,
        "head_dim": 16,
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
    },
    "qwen2_5_vl": {
        **TINY_TEXT,
        "vision_token_id": TINY_VOCAB - 5,
        "vision_config": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
        },
    },
}

CHARS_PER_TOKEN = 4  # English text through a BPE tokenizer: the prompt's length in tokens
PATCH_SIZE = 14
MERGE_SIZE = 2
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OPENAI_CLIP_MEAN/STD, Qwen2-VL's
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True, slots=True)
class BenchModel:
    """One model of the benchmark: its architecture, the profile whose prompt and pixel
    limits it runs with, and the chat template's text around the image."""

    name: str  # the vlm profile name (handler/engines/vlm/profiles.py)
    source: str  # where the config comes from
    config: Mapping[str, Any]
    image_processor: str  # "paddleocr_vl" or "qwen2_vl"
    temporal_patch_size: int
    template_tokens: tuple[int, int]  # chat-template tokens before the image, after the prompt


MODELS: dict[str, BenchModel] = {
    "paddleocr-vl": BenchModel(
        name="paddleocr-vl",
        source="PaddlePaddle/PaddleOCR-VL config.json",
        config=PADDLEOCR_VL_CONFIG,
        image_processor="paddleocr_vl",
        temporal_patch_size=1,
        template_tokens=(3, 4),  # "<bos>User: " ... "\nAssistant: "
    ),
    "nanonets-ocr-s": BenchModel(
        name="nanonets-ocr-s",
        source="Qwen/Qwen2.5-VL-3B-Instruct config.json (Nanonets-OCR-s's base)",
        config=QWEN25_VL_3B_CONFIG,
        image_processor="qwen2_vl",
        temporal_patch_size=2,
        # "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        # ... "<|im_end|>\n<|im_start|>assistant\n"
        template_tokens=(14, 5),
    ),
}


def model_config(model: BenchModel, *, tiny: bool = False) -> dict[str, Any]:
    """The model's config as a plain dict (the hub's flat form), shrunk when ``tiny``."""
    config = copy.deepcopy(dict(model.config))
    if tiny:
        overrides = copy.deepcopy(TINY_OVERRIDES[config["model_type"]])
        config["vision_config"].update(overrides.pop("vision_config"))
        config.update(overrides)
    return config


def build_model(config: Mapping[str, Any], *, device: str, dtype: torch.dtype) -> Any:
    """The model of ``config`` with random weights, built straight on ``device``."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    values = dict(config)
    model_type = values.pop("model_type")
    values.pop("architectures", None)
    values.pop("torch_dtype", None)
    hf_config = AutoConfig.for_model(model_type, **values)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(hf_config, dtype=dtype)
    return model.eval()


def count_parameters(config: Mapping[str, Any]) -> int:
    """How many parameters the model of ``config`` has (built on the meta device: no memory)."""
    import torch

    model = build_model(config, device="meta", dtype=torch.bfloat16)
    return sum(p.numel() for p in model.parameters())


def image_processor(model: BenchModel, *, min_pixels: int, max_pixels: int) -> Any | None:
    """The model's own PIL image processor, or None where this transformers lacks it."""
    try:
        if model.image_processor == "paddleocr_vl":
            from transformers.models.paddleocr_vl.image_processing_pil_paddleocr_vl import (
                PaddleOCRVLImageProcessorPil as Processor,
            )
        else:
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
                Qwen2VLImageProcessorPil as Processor,
            )
    except ImportError:
        return None
    return Processor(min_pixels=min_pixels, max_pixels=max_pixels)


def smart_resize(height: int, width: int, *, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's rule: both sides multiples of 28 (a merged patch), the area within the
    limits, the aspect ratio kept as closely as that allows."""
    factor = PATCH_SIZE * MERGE_SIZE
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify(
    images: Sequence[Image.Image], model: BenchModel, *, min_pixels: int, max_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(pixel_values, image_grid_thw)`` as the model's image processor makes them, for a
    transformers without the PIL image processors. Qwen2-VL's rule: resize (bicubic) per
    :func:`smart_resize`, scale to 0..1, normalise with CLIP's mean and std, cut into
    14-pixel patches. Qwen2-VL orders them by 2x2 merge group and repeats each
    ``temporal_patch_size`` times (a still image as a 2-frame clip), one row of
    ``C * T * 14 * 14`` values per patch; PaddleOCR-VL keeps them in row order, each
    ``(C, 14, 14)``."""
    from PIL import Image as PILImage

    mean = np.array(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(CLIP_STD, dtype=np.float32)[:, None, None]
    rows: list[np.ndarray] = []
    grids = []
    for image in images:
        height, width = smart_resize(
            image.height, image.width, min_pixels=min_pixels, max_pixels=max_pixels
        )
        resized = image.convert("RGB").resize((width, height), PILImage.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
        pixels = (pixels - mean) / std
        gh, gw, p, m = height // PATCH_SIZE, width // PATCH_SIZE, PATCH_SIZE, MERGE_SIZE
        if model.image_processor == "paddleocr_vl":
            patches = pixels.reshape(3, gh, p, gw, p).transpose(1, 3, 0, 2, 4)
            rows.append(patches.reshape(gh * gw, 3, p, p))
        else:
            patches = pixels.reshape(3, gh // m, m, p, gw // m, m, p)
            patches = patches.transpose(1, 4, 2, 5, 0, 3, 6)  # (gh, gw, mh, mw, C, ph, pw)
            patches = np.repeat(patches[:, :, :, :, :, None], model.temporal_patch_size, axis=5)
            rows.append(patches.reshape(gh * gw, -1))
        grids.append((1, gh, gw))
    return np.concatenate(rows), np.array(grids, dtype=np.int64)


def prompt_tokens(model: BenchModel, prompt: str) -> int:
    """About how many text tokens one page's prompt is, chat template included."""
    before, after = model.template_tokens
    return before + math.ceil(len(prompt) / CHARS_PER_TOKEN) + after


def batch_inputs(
    model: BenchModel,
    config: Mapping[str, Any],
    images: Sequence[Image.Image],
    *,
    prompt: str,
    min_pixels: int,
    max_pixels: int,
    processor: Any | None,
) -> dict[str, torch.Tensor]:
    """What ``generate`` takes for one batch of page images, on the CPU: the images through
    the model's image processor, and per page ``text | <vision_start> <image>*n
    <vision_end> | text`` (n = the page's merged patches), left-padded to one length."""
    import torch

    if processor is not None:
        features = processor(images=list(images), return_tensors="pt")
        pixel_values, grids = features["pixel_values"], features["image_grid_thw"]
    else:
        values, grid_array = patchify(images, model, min_pixels=min_pixels, max_pixels=max_pixels)
        pixel_values, grids = torch.from_numpy(values), torch.from_numpy(grid_array)
    merge = config["vision_config"].get("spatial_merge_size", MERGE_SIZE)
    text = prompt_tokens(model, prompt)
    filler = _filler_ids(config)
    sequences = []
    for grid in grids.tolist():
        n_image = int(np.prod(grid)) // merge**2
        before, after = model.template_tokens[0], text - model.template_tokens[0]
        sequences.append(
            [config["bos_token_id"], *filler[: before - 1]]
            + [config["vision_start_token_id"]]
            + [config["image_token_id"]] * n_image
            + [config["vision_end_token_id"]]
            + [filler[i % len(filler)] for i in range(after)]
        )
    longest = max(map(len, sequences))
    pad = config["pad_token_id"]
    input_ids = torch.tensor([[pad] * (longest - len(s)) + s for s in sequences])
    attention_mask = torch.tensor([[0] * (longest - len(s)) + [1] * len(s) for s in sequences])
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "mm_token_type_ids": (input_ids == config["image_token_id"]).to(torch.int32),
        "pixel_values": pixel_values,
        "image_grid_thw": grids,
    }


def _filler_ids(config: Mapping[str, Any]) -> list[int]:
    """Ordinary text token ids: above the first special ids, below the vision ones."""
    top = min(config["image_token_id"], config["vocab_size"]) - 8
    return list(range(16, min(16 + 256, top)))
