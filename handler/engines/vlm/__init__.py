"""The ``vlm`` engine: transformers vision-language OCR models (PaddleOCR-VL, Nanonets-OCR-s,
DeepSeek-OCR-2) by profile; torch and transformers are imported only when it is built."""
