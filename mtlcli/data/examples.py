"""Plain records every reader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NerExample:
    id: str
    tokens: list[str]
    tags: list[str]  # IOB2, one per token
    # the document it belongs to (CoNLL's -DOCSTART- numbering): neighbours with the same one are its context
    # (ner_context); None: a sentence on its own
    document: int | None = None


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context: context[start:start+len(text)] == text


@dataclass(frozen=True)
class QaExample:
    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    title: str = ""
    # SQuAD 2.0's is_impossible: the context holds no answer (answers empty), the model should answer ""
    impossible: bool = False


@dataclass(frozen=True)
class ClsExample:
    id: str
    text: str
    label: str
    text_pair: str | None = None  # the second text of a sentence pair (NLI, paraphrase), encoded as a pair
