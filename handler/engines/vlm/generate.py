"""One batch of pages through a transformers vision-language model.

The processor call (image resizing, normalising, patching; the prompt in the model's chat
template, tokenised, with the image's placeholder tokens) is made for each page on its own,
by :func:`prepare_page`, in the thread that submits the page: it costs about 0.1 s per page
on a CPU core (a 1000 x 1300 page for PaddleOCR-VL; 0.9 s for a batch of 8), and done there
it overlaps the GPU's generation of the batch before. :func:`collate` then only pads the
pages' token sequences on the left and concatenates their image tensors, which is what the
processor does for a batch (``padding=True``). Where the pages' features cannot be joined
that way, :func:`prepare_batch` makes the processor's own batch call instead.
:func:`generate` runs greedy decoding and returns each page's new text.

torch, transformers and PIL are imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Per-token features the tokenizer pads (on the left, for generation); every other feature
#: is per image and is concatenated along its first axis.
SEQUENCE_FEATURES = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


@dataclass(slots=True)
class PreparedPage:
    """One page as the model takes it: the processor's features for it alone (batch of 1)."""

    features: dict[str, Any]
    image: Any  # the PIL image the features were made from (for prepare_batch)
    text: str  # the prompt text, with the image placeholder, before tokenising


@dataclass(slots=True)
class Generation:
    """What the model answered for one page."""

    text: str
    tokens: int  # new tokens, up to and including the end token
    truncated: bool  # stopped by the new-token budget, not by the model: the end may be cut
    seconds: float  # this page's share of its batch's generation time


def chat_text(processor: Any, prompt: str) -> str:
    """The text the processor gets for one page: ``prompt`` with the page's image.

    A prompt that places the image itself (it holds the processor's image token, as
    DeepSeek-OCR's ``<image>\\n...`` does) is used as it is; otherwise a user turn with the
    image and the prompt goes through the model's chat template, with the assistant's turn
    opened; without a template, the image token is put before the prompt.
    """
    image_token = getattr(processor, "image_token", None) or "<image>"
    if image_token in prompt:
        return prompt
    if getattr(processor, "chat_template", None) is None:
        return f"{image_token}\n{prompt}"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text: str = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text


def pixel_kwargs(processor: Any, min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """The image size limits as the processor takes them, or nothing where it takes none.

    The Qwen2-VL family of image processors (PaddleOCR-VL, Qwen2/2.5-VL: ``patch_size``,
    ``merge_size`` and a ``size`` of ``shortest_edge``/``longest_edge`` in pixels) resize
    each image to a pixel count between the two. Others (DeepSeek-OCR-2's fixed views and
    tiles) size images their own way; the engine's drawing size is their only limit.
    """
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)  # a SizeDict (or a dict in older releases)
    read = getattr(size, "get", None)
    family = hasattr(image_processor, "patch_size") and hasattr(image_processor, "merge_size")
    if not (family and callable(read)):
        return {}
    shortest, longest = read("shortest_edge"), read("longest_edge")
    if shortest is None or longest is None:
        return {}
    return {
        "size": {"shortest_edge": min_pixels or shortest, "longest_edge": max_pixels or longest}
    }


def prepare_page(
    processor: Any, image: np.ndarray, text: str, image_kwargs: Mapping[str, Any]
) -> PreparedPage:
    """The processor's features for one page (RGB uint8 ``image``), as torch tensors."""
    from PIL import Image

    picture = Image.fromarray(image)
    features = processor(images=[picture], text=[text], return_tensors="pt", **image_kwargs)
    return PreparedPage(features=dict(features), image=picture, text=text)


def prepare_batch(
    processor: Any, pages: Sequence[PreparedPage], image_kwargs: Mapping[str, Any]
) -> Any:
    """The processor's own batch call for ``pages`` (its tokenizer pads on the left)."""
    return processor(
        images=[page.image for page in pages],
        text=[page.text for page in pages],
        padding=True,
        return_tensors="pt",
        **image_kwargs,
    )


def collate(pages: Sequence[PreparedPage], pad_token_id: int) -> Any | None:
    """The pages' features as one left-padded batch (a ``BatchFeature``), or None when they
    cannot be joined so (features differ between pages, or one is not a tensor)."""
    import torch
    from transformers import BatchFeature

    keys = set(pages[0].features)
    if not {"input_ids", "attention_mask"} <= keys or any(
        set(page.features) != keys for page in pages
    ):
        return None
    values = {key: [page.features[key] for page in pages] for key in keys}
    if not all(isinstance(v, torch.Tensor) for column in values.values() for v in column):
        return None
    length = max(int(ids.shape[1]) for ids in values["input_ids"])
    batch = {}
    for key, column in values.items():
        if key in SEQUENCE_FEATURES:
            fill = pad_token_id if key == "input_ids" else 0
            batch[key] = torch.cat([_pad_left(v, length, fill) for v in column])
        else:
            batch[key] = torch.cat(column)
    return BatchFeature(data=batch)


def _pad_left(tokens: Any, length: int, fill: int) -> Any:
    import torch.nn.functional as F

    return F.pad(tokens, (length - tokens.shape[1], 0), value=fill)


def generate(
    model: Any,
    processor: Any,
    batch: Any,
    *,
    max_new_tokens: int,
    pad_token_id: int,
) -> list[Generation]:
    """Greedy decoding for a batch from :func:`collate` or :func:`prepare_batch`: each page's
    new text (special tokens left out) and token count, in the batch's order."""
    import torch

    started = time.perf_counter()
    inputs = batch.to(model.device, dtype=model.dtype)
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=pad_token_id,
        )
    new = output[:, inputs["input_ids"].shape[1] :].cpu()
    texts = processor.batch_decode(
        new, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    stops = _stop_ids(model)
    share = (time.perf_counter() - started) / len(texts)
    generations = []
    for row, text in zip(new.tolist(), texts, strict=True):
        end = next((i for i, token in enumerate(row) if token in stops), None)
        generations.append(
            Generation(
                text=text,
                tokens=len(row) if end is None else end + 1,
                truncated=end is None and len(row) >= max_new_tokens,
                seconds=share,
            )
        )
    return generations


def _stop_ids(model: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(token) for token in eos}


def pad_token_id(processor: Any, model: Any) -> int:
    """The id pages are padded with: the tokenizer's pad token, else its end token, else 0."""
    tokenizer = getattr(processor, "tokenizer", processor)
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(model.generation_config, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int):
            return candidate
    return 0
