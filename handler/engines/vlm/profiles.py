"""The vision-language OCR models the ``vlm`` engine knows, by name.

A profile says where a model's weights come from (for ``pagedrop models download``), how to
ask it for a page (prompt, image size limits, new-token budget) and how to read its answer.
Settings override the prompt and the limits (``PAGEDROP_VLM_*``); any model folder with a
transformers ``AutoModelForImageTextToText`` checkpoint can be used through
``PAGEDROP_VLM_MODEL_PATH`` with the profile whose output format it shares.

Every profile loads with transformers' own classes (no ``trust_remote_code``), checked
against transformers 5.23: ``PaddleOCRVLForConditionalGeneration``,
``Qwen2_5_VLForConditionalGeneration`` (Nanonets-OCR-s), ``DeepseekOcr2ForConditionalGeneration``
(the ``deepseek-community`` conversion; DeepSeek-OCR 1 and ``deepseek-ai``'s own repositories
need their remote code and are not used).

``min_pixels``/``max_pixels``: the engine draws each page at most ``max_pixels`` large, and
image processors of the Qwen2-VL family (PaddleOCR-VL, Qwen2.5-VL) resize it to a pixel count
between the two (``size={"shortest_edge", "longest_edge"}``); 0 leaves the processor's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutputFormat = Literal["text", "markdown", "deepseek-grounding"]


@dataclass(frozen=True, slots=True)
class VlmProfile:
    name: str  # the value of PAGEDROP_VLM_MODEL, and the folder name under PAGEDROP_MODEL_DIR
    repo_id: str  # Hugging Face repository the weights come from
    revision: str  # branch, tag or commit to download
    subfolder: str  # folder inside the repository with the transformers checkpoint ("" = root)
    prompt: str
    output: OutputFormat  # how the answer is parsed into elements
    max_new_tokens: int
    min_pixels: int  # image size limits handed to the processor (pixels per page image)
    max_pixels: int
    dtype: str = "bfloat16"  # on a GPU; the CPU runs float32
    notes: str = ""


PROFILES: dict[str, VlmProfile] = {
    "paddleocr-vl": VlmProfile(
        name="paddleocr-vl",
        repo_id="PaddlePaddle/PaddleOCR-VL",
        revision="main",
        subfolder="",
        prompt="OCR:",
        output="text",
        max_new_tokens=4096,
        min_pixels=112_896,
        max_pixels=1_003_520,
        notes="limits: PaddleX's defaults for the VL model (paddleocr_vl/pipeline.py); "
        "the prompts it knows: 'OCR:', 'Table Recognition:', 'Formula Recognition:', "
        "'Chart Recognition:'",
    ),
    "nanonets-ocr-s": VlmProfile(
        name="nanonets-ocr-s",
        repo_id="nanonets/Nanonets-OCR-s",
        revision="main",
        subfolder="",
        prompt=(
            "Extract the text from the above document as if you were reading it naturally. "
            "Return the tables in html format. Return the equations in LaTeX representation. "
            "If there is an image in the document and image caption is not present, add a "
            "small description of the image inside the <img></img> tag; otherwise, add the "
            "image caption inside <img></img>. Watermarks should be wrapped in brackets. Ex: "
            "<watermark>OFFICIAL COPY</watermark>. Page numbers should be wrapped in brackets. "
            "Ex: <page_number>14</page_number> or <page_number>9/22</page_number>. Prefer "
            "using \u2610 and \u2611 for check boxes."
        ),
        output="markdown",
        max_new_tokens=4096,
        min_pixels=200_704,  # 256 visual tokens of 28 x 28 pixels
        max_pixels=1_806_336,  # 2304 tokens: a letter page at about 140 DPI
        notes="Qwen2.5-VL 3B; prompt from the model card; transformers' Qwen2.5-VL "
        "processor needs torchvision (its video processor has no PIL backend)",
    ),
    "deepseek-ocr": VlmProfile(
        name="deepseek-ocr",
        repo_id="deepseek-community/DeepSeek-OCR-2",
        revision="main",
        subfolder="",
        prompt="<image>\n<|grounding|>Convert the document to markdown.",
        output="deepseek-grounding",
        max_new_tokens=4096,
        min_pixels=0,
        max_pixels=6 * 768 * 768,  # its processor's largest input: up to 6 tiles of 768 x 768
        notes="DeepSeek-OCR-2 in transformers' format (DeepseekOcr2ForConditionalGeneration); "
        "the prompt places the image itself (no chat template); its processor makes a "
        "1024 x 1024 view and 2 to 6 tiles of 768 x 768 whatever the drawing size",
    ),
}


def profile(name: str) -> VlmProfile:
    """The profile called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown vlm model {name!r}; known: {known}") from None
