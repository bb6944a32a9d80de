"""Tiny, randomly initialised vision-language models for tests, built offline in a second.

:func:`build_tiny_paddleocr_vl` writes a PaddleOCR-VL checkpoint folder the way
``pagedrop models download`` leaves a real one (config, safetensors weights, generation
config, processor with the PIL image processor, tokenizer, chat template), so the engines
load it through their real path. The tokenizer is a byte-level BPE trained here with
``tokenizers``, with the special tokens the processor and the chat template use.

Its generation config suppresses the special tokens and every token that is not a word of
letters: the random model then writes words until ``max_new_tokens``, never an empty answer,
so tests see elements come out of it.

torch, transformers and tokenizers are imported inside the functions: test modules call
``pytest.importorskip`` before they use them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BOS, EOS, UNK = "<|begin_of_sentence|>", "</s>", "<unk>"
IMAGE_TOKEN = "<|IMAGE_PLACEHOLDER|>"
IMAGE_START, IMAGE_END = "<|IMAGE_START|>", "<|IMAGE_END|>"
VIDEO_TOKEN = "<|video_pad|>"
PAD_TOKEN = "<pad>"
SPECIAL_TOKENS = [UNK, BOS, EOS, PAD_TOKEN, IMAGE_TOKEN, IMAGE_START, IMAGE_END, VIDEO_TOKEN]
VOCAB_SIZE = 400

# The shape of PaddleOCR-VL's template: "User: <image>prompt\nAssistant: ".
CHAT_TEMPLATE = (
    "{{- '" + BOS + "' -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}User: "
    "{%- for content in message['content'] -%}"
    "{%- if content['type'] == 'image' -%}"
    "{{- '" + IMAGE_START + IMAGE_TOKEN + IMAGE_END + "' -}}"
    "{%- elif content['type'] == 'text' -%}{{- content['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}\n"
    "{%- elif message['role'] == 'assistant' -%}"
    "Assistant: {{ message['content'] }}" + EOS + "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}Assistant: {% endif -%}"
)

_CORPUS = (
    "OCR: User Assistant. The quick brown fox jumps over the lazy dog. A scanned page of "
    "text, with tables, formulas and figures; a title, a heading and a list of items. "
    "Invoice number date total amount paid. Lorem ipsum dolor sit amet, consectetur."
)
_WORD = re.compile(r"^ ?[A-Za-z]{2,}$")

# Small enough to build, save, load and generate in about a second on one CPU core.
TEXT_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
    # multimodal rotary sections (temporal, height, width) that add up to head_dim / 2
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
}
VISION_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "patch_size": 14,
    "spatial_merge_size": 2,
}
# The image processor's own limits (pixels): small pages, few image tokens.
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 64


def _tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CORPUS] * 8, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN, "video_token": VIDEO_TOKEN},
    )


def _not_words(tokenizer: object) -> list[int]:
    """Ids of the tokens the tiny model may not write: specials, and all but letter words."""
    vocab: dict[str, int] = tokenizer.get_vocab()  # type: ignore[attr-defined]
    decode = tokenizer.convert_tokens_to_string  # type: ignore[attr-defined]
    return sorted(i for token, i in vocab.items() if not _WORD.match(decode([token])))


def build_tiny_paddleocr_vl(folder: Path) -> Path:
    """Write a tiny random PaddleOCR-VL checkpoint (model, processor, tokenizer) to
    ``folder``; returns ``folder``."""
    import torch
    from transformers import (
        GenerationConfig,
        PaddleOCRVLConfig,
        PaddleOCRVLForConditionalGeneration,
        PaddleOCRVLProcessor,
    )
    from transformers.models.paddleocr_vl.image_processing_pil_paddleocr_vl import (
        PaddleOCRVLImageProcessorPil,
    )

    tokenizer = _tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    config = PaddleOCRVLConfig(
        text_config={
            **TEXT_CONFIG,
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "pad_token_id": ids[PAD_TOKEN],
            "bos_token_id": ids[BOS],
            "eos_token_id": ids[EOS],
        },
        vision_config=VISION_CONFIG,
        image_token_id=ids[IMAGE_TOKEN],
        video_token_id=ids[VIDEO_TOKEN],
        vision_start_token_id=ids[IMAGE_START],
        vision_end_token_id=ids[IMAGE_END],
    )
    torch.manual_seed(0)
    model = PaddleOCRVLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD_TOKEN],
        suppress_tokens=_not_words(tokenizer),
    )
    processor = PaddleOCRVLProcessor(
        image_processor=PaddleOCRVLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_paddleocr_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PaddleOCR-VL folder, built once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_paddleocr_vl(tmp_path_factory.mktemp("models") / "paddleocr-vl")
