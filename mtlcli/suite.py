"""The seed's model validation suite: 5 NER and 5 QA cases, each judged exact (pass), partial or miss (fail).

The sentences, contexts and questions are the seed README's "Model Validation" cases (contexts the seed
cut short with "..." end at the last full sentence). Expected entities follow the CoNLL-2003 guidelines
("the United States" → LOC "United States", a landmark such as the Eiffel Tower → LOC).

Judging:
  NER — an entity matches when type and character span agree, leading/trailing punctuation aside
        ("Apple Inc." and "Apple Inc" are the same entity, whether the model tags the final "." or not);
        pass: every expected entity matched and nothing else predicted; partial: at least one predicted
        entity overlaps an expected one; fail: none does.
  QA  — pass: exact match after the official SQuAD normalization; partial: token F1 > 0; fail: F1 = 0.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field

from .metrics import exact_match, token_f1

PASS, PARTIAL, FAIL = "pass", "partial", "fail"

NER_CASES = [
    (
        "Technology company",
        "Apple Inc. was founded by Steve Jobs in California.",
        [("Apple Inc.", "ORG"), ("Steve Jobs", "PER"), ("California", "LOC")],
    ),
    (
        "Political figure",
        "Barack Obama was the president of the United States.",
        [("Barack Obama", "PER"), ("United States", "LOC")],
    ),
    (
        "Tech acquisition",
        "Google acquired YouTube and operates in Mountain View.",
        [("Google", "ORG"), ("YouTube", "ORG"), ("Mountain View", "LOC")],
    ),
    (
        "Landmark location",
        "The Eiffel Tower is located in Paris, France.",
        [("Eiffel Tower", "LOC"), ("Paris", "LOC"), ("France", "LOC")],
    ),
    (
        "Corporate leadership",
        "Microsoft CEO Satya Nadella announced new products in Seattle.",
        [("Microsoft", "ORG"), ("Satya Nadella", "PER"), ("Seattle", "LOC")],
    ),
]

QA_CASES = [
    (
        "Company founders",
        "Apple Inc. is an American multinational technology company headquartered in Cupertino, California. "
        "It was founded by Steve Jobs, Steve Wozniak, and Ronald Wayne in 1976.",
        "Who founded Apple?",
        "Steve Jobs, Steve Wozniak, and Ronald Wayne",
    ),
    (
        "Geographic location",
        "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It was completed in 1889.",
        "Where is the Eiffel Tower located?",
        "Paris, France",
    ),
    (
        "Time period",
        "Barack Obama served as the 44th president of the United States from 2009 to 2017. He was born in Honolulu, Hawaii.",
        "When did Obama serve as president?",
        "2009 to 2017",
    ),
    (
        "Founding year",
        "Google was founded in 1998 by Larry Page and Sergey Brin while they were Ph.D. students at Stanford University.",
        "When was Google founded?",
        "1998",
    ),
    (
        "Geographic region",
        "The Amazon rainforest covers most of the Amazon basin in South America. It spans across nine countries.",
        "Where is the Amazon rainforest?",
        "South America",
    ),
]


@dataclass
class CaseResult:
    task: str  # "ner" or "qa"
    name: str
    text: str  # the sentence (NER) or the context (QA)
    question: str  # QA only
    expected: list  # NER: [[text, type], ...]; QA: [answer]
    predicted: list  # NER: [[text, type], ...]; QA: [answer]
    status: str  # pass, partial or fail
    score: float  # NER: share of expected entities matched exactly; QA: SQuAD token F1 (0-1)
    detail: str = ""
    spans: list = field(default_factory=list)  # NER: predicted [start, end, type]; QA: [start, end] of the answer

    def to_dict(self) -> dict:
        return asdict(self)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past punctuation and spaces at either edge."""
    strip = set(string.punctuation) | set(string.whitespace)
    while start < end and text[start] in strip:
        start += 1
    while end > start and text[end - 1] in strip:
        end -= 1
    return start, end


def judge_ner(
    sentence: str, expected: list[tuple[str, str]], predicted: list[tuple[int, int, str]]
) -> tuple[str, float, str]:
    """(status, share of expected entities matched, what went wrong) for predicted (start, end, type) spans."""
    gold = {(*_trim(sentence, sentence.index(text), sentence.index(text) + len(text)), kind) for text, kind in expected}
    guess = {(*_trim(sentence, start, end), kind) for start, end, kind in predicted}
    guess = {g for g in guess if g[0] < g[1]}
    matched = gold & guess
    missed = sorted(gold - guess)
    spurious = sorted(guess - gold)
    overlaps = any(s < ge and gs < e for s, e, _ in guess for gs, ge, _ in gold)

    def show(spans):
        return ", ".join(f"{sentence[s:e]} ({kind})" for s, e, kind in spans)

    problems = ([f"missed {show(missed)}"] if missed else []) + ([f"unexpected {show(spurious)}"] if spurious else [])
    detail = f"{len(matched)}/{len(gold)} entities" + (f"; {'; '.join(problems)}" if problems else "")
    if not missed and not spurious:
        status = PASS
    elif matched or overlaps:
        status = PARTIAL
    else:
        status = FAIL
    return status, len(matched) / len(gold) if gold else float(not guess), detail


def judge_qa(predicted: str, expected: str) -> tuple[str, float, str]:
    em, f1 = exact_match(predicted, [expected]), token_f1(predicted, [expected])
    status = PASS if em else PARTIAL if f1 > 0 else FAIL
    return status, f1, f"EM {em * 100:.0f}, F1 {f1 * 100:.1f}"


def run_suite(model, tokenizer, device="cpu") -> list[CaseResult]:
    """Run the cases of every task the model has (NER cases need an NER head, QA cases a QA head)."""
    import contextlib

    from . import tasks
    from .inputs import QaItem, TextItem

    def predict(task: str, items: list, **options) -> list:
        return tasks.get(task).predict(model, tokenizer, items, 32, device, contextlib.nullcontext, **options)

    results = []
    if "ner" in model.spec.tasks:
        ner_results = predict("ner", [TextItem(sentence) for _, sentence, _ in NER_CASES])
        for (name, sentence, expected), entities in zip(NER_CASES, (r.entities for r in ner_results)):
            spans = [(e.start, e.end, e.type) for e in entities]
            status, score, detail = judge_ner(sentence, expected, spans)
            results.append(
                CaseResult(
                    "ner",
                    name,
                    sentence,
                    "",
                    [list(e) for e in expected],
                    [[e.text, e.type] for e in entities],
                    status,
                    score,
                    detail,
                    [list(s) for s in spans],
                )
            )
    if "qa" in model.spec.tasks:
        answers = predict("qa", [QaItem(question, context) for _, context, question, _ in QA_CASES])
        for (name, context, question, expected), best in zip(QA_CASES, answers):
            span = best[0]
            status, score, detail = judge_qa(span.text, expected)
            results.append(
                CaseResult(
                    "qa",
                    name,
                    context,
                    question,
                    [expected],
                    [span.text],
                    status,
                    score,
                    detail,
                    [span.start, span.end],
                )
            )
    return results


def summarize(results: list[CaseResult]) -> dict:
    """Counts per task and status: {"ner": {"pass": 3, "partial": 1, "fail": 1, "cases": 5}, ...}."""
    summary: dict = {}
    for result in results:
        row = summary.setdefault(result.task, {PASS: 0, PARTIAL: 0, FAIL: 0, "cases": 0})
        row[result.status] += 1
        row["cases"] += 1
    return summary
