"""NER document context (FLERT, Schweter & Akbik 2020): each window of a sentence also holds sub-tokens of the
sentences around it in its document, as context only: they carry no label (no loss) and no word (no prediction),
so every word is still predicted once, from its own sentence's window."""

from __future__ import annotations


def document_context(
    token_ids: list[list[int]], examples: list, index: int, at_start: bool, at_end: bool, limit: int, room: int
) -> tuple[list[int], list[int]]:
    """(left, right) sub-tokens of the neighbouring sentences of `examples[index]` in its document: at most `limit`
    on each side and `room` in all (what the window leaves free; a side short of its share leaves it to the other).
    The left side only for a window that starts its sentence, the right only for one that ends it: the windows
    inside a long sentence already have its own words around them. `token_ids`: each example's sub-tokens."""
    left = _neighbours(token_ids, examples, index, -1, limit) if at_start else []
    right = _neighbours(token_ids, examples, index, 1, limit) if at_end else []
    room = max(room, 0)
    take_right = min(len(right), max(room // 2, room - len(left)))
    take_left = min(len(left), room - take_right)
    return left[len(left) - take_left :], right[:take_right]


def _neighbours(token_ids: list[list[int]], examples: list, index: int, step: int, limit: int) -> list[int]:
    """The `limit` sub-tokens nearest to example `index` on one side (step -1: before it, 1: after it), from the
    sentences of the same document (a document of None is the sentence alone)."""
    document, found, other = examples[index].document, [], index + step
    while document is not None and 0 <= other < len(examples) and examples[other].document == document:
        found = found + token_ids[other] if step > 0 else token_ids[other] + found
        if len(found) >= limit:
            break
        other += step
    return found[:limit] if step > 0 else found[max(len(found) - limit, 0) :]


def line_documents(texts: list[str]) -> list[int]:
    """The document of each input line for `predict-ner --context-lines`: consecutive lines form one, and a blank
    line starts the next."""
    documents, document = [], 0
    for text in texts:
        document += not text.strip()
        documents.append(document)
    return documents
