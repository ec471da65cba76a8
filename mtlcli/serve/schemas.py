"""Request bodies of `mtl serve` (validated by pydantic: a bad field gets a 422 naming it) and the service limits.

A task says which body it takes (mtlcli.tasks: `request_model`) and turns it into predictor inputs
(`request_inputs`); nothing here knows a task by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value  # kept exactly as sent: character offsets index the caller's own text


Text = Annotated[StrictStr, AfterValidator(_non_blank)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class TextsRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"texts": ["Apple was founded by Steve Jobs in California."]}]}
    )
    inputs_field: ClassVar[str] = "texts"  # the list of inputs, which the service's limits count and measure
    texts: list[Text] = Field(min_length=1, description="The texts, each as it is (offsets index it).")


class TextsOrPairsRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["I still have not received my new card."]},
                {"texts": ["A man is playing a guitar."], "text_pairs": ["Someone plays music."]},
            ]
        },
    )
    text_pairs: list[Text] | None = Field(
        None, description="Sentence pairs (NLI, paraphrase): the second text of each text, as many as texts."
    )

    @model_validator(mode="after")
    def _one_pair_per_text(self):
        if self.text_pairs is not None and len(self.text_pairs) != len(self.texts):
            raise ValueError(f"text_pairs: {len(self.text_pairs)} pair texts for {len(self.texts)} texts")
        return self


class Question(Strict):
    id: StrictStr | StrictInt | None = Field(None, description="Passed through to the result.")
    question: Text
    context: Text


class QuestionsRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "questions": [
                        {"id": "q1", "question": "Who founded Apple?", "context": "Apple was founded by Steve Jobs."}
                    ],
                    "n_best": 3,
                }
            ]
        },
    )
    inputs_field: ClassVar[str] = "questions"
    questions: list[Question] = Field(min_length=1)
    n_best: int = Field(1, ge=1, le=20, description="Also return the K best answers.")
    max_answer_length: int | None = Field(None, ge=1, le=512, description="Longest answer in tokens.")
    null_threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description='Models trained on unanswerable questions: answer "" when the null '
        "score beats the best span's by more than this (default: the model's).",
    )


@dataclass(frozen=True)
class ServeSettings:
    """How the service loads its model, batches and limits requests (all shown by GET /info)."""

    device: str = "auto"
    precision: str = "auto"
    quantize: bool = False
    threads: int | None = None  # torch's intra-op threads; None: torch's default
    max_batch: int = 64  # inputs gathered into one batch
    max_batch_tokens: int = 16384  # ... or this many tokens, whichever comes first
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_queue: int = 2048  # inputs waiting for the worker; beyond it: 429
    max_inputs: int = 256  # per request
    max_chars: int = 20000  # per text, question or context
    max_body_bytes: int = 1 << 20
    timeout_s: float = 30.0  # per request, from arrival to answer

    def limits(self) -> dict:
        return asdict(self)
