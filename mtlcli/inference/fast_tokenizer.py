"""A saved fast tokenizer (tokenizer.json) run by the `tokenizers` library alone: for ONNX exports, so that a
prediction imports neither transformers nor torch.

It answers the calls mtl's tasks make (mtlcli.tasks: words, windows, offsets, segment ids) exactly as
transformers' fast tokenizer does, since that one is this same `tokenizers` object with a thin layer on
top: truncation and overflowing windows are the backend's own, and the outputs are its encodings, unpadded.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError, Problem

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]  # a BERT tokenizer's; others name theirs


class Encoded(dict):
    """What a call returns: lists per row under transformers' names, and the rows' word and sequence ids."""

    def __init__(self, encodings: list, fields: dict):
        super().__init__(fields)
        self.encodings = encodings

    def word_ids(self, row: int = 0) -> list[int | None]:
        return self.encodings[row].word_ids

    def sequence_ids(self, row: int = 0) -> list[int | None]:
        return self.encodings[row].sequence_ids


class FastTokenizer:
    """The tokenizer of a model directory, from its tokenizer.json and its special tokens."""

    is_fast = True

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer

        directory = Path(directory)
        try:
            self.backend_tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        except Exception as err:  # tokenizers raises plain Exceptions for a missing or broken file
            raise InputError(
                Problem(str(directory / TOKENIZER_FILE), "", f"cannot load the tokenizer: {err}")
            ) from None
        self.truncation_side, self.model_input_names, special = "right", INPUT_NAMES, {}
        for name in (SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG):  # the config's entries win, as in transformers
            path = directory / name
            if path.is_file():
                config = json.loads(path.read_text(encoding="utf-8"))
                special |= {key: value for key, value in config.items() if key.endswith("_token") and value}
                self.truncation_side = config.get("truncation_side", self.truncation_side)
                self.model_input_names = config.get("model_input_names", self.model_input_names)
        for key in ("cls_token", "sep_token", "pad_token", "unk_token"):
            token = special.get(key)
            token = token.get("content") if isinstance(token, dict) else token
            setattr(self, f"{key}_id", None if token is None else self.backend_tokenizer.token_to_id(token))

    def __call__(
        self,
        text,
        text_pair=None,
        *,
        is_split_into_words: bool = False,
        add_special_tokens: bool = True,
        truncation=False,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        return_offsets_mapping: bool = False,
    ) -> Encoded:
        single = isinstance(text, str) or (is_split_into_words and text and isinstance(text[0], str))
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if single else list(text_pair))
        backend = self.backend_tokenizer
        backend.no_padding()
        if truncation:
            strategy = "longest_first" if truncation is True else truncation
            backend.enable_truncation(max_length, stride=stride, strategy=strategy, direction=self.truncation_side)
        else:
            backend.no_truncation()
        batch = texts if pairs is None else list(zip(texts, pairs))
        encodings = backend.encode_batch(
            batch, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words
        )
        rows, samples = [], []
        for index, encoding in enumerate(encodings):
            windows = [encoding] + (encoding.overflowing if return_overflowing_tokens else [])
            rows += windows
            samples += [index] * len(windows)
        values = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask"}
        fields = {name: [getattr(e, values[name]) for e in rows] for name in self.model_input_names if name in values}
        if return_offsets_mapping:
            fields["offset_mapping"] = [e.offsets for e in rows]
        if return_overflowing_tokens:
            fields["overflow_to_sample_mapping"] = samples
        elif single:
            fields = {key: value[0] for key, value in fields.items()}
        return Encoded(rows, fields)
