from mtlcli.backbones import load_tokenizer
from mtlcli.data.examples import Answer, NerExample, QaExample
from mtlcli.features import IGNORE, cached
from mtlcli.tasks.ner import word_features as ner_features
from mtlcli.tasks.qa import window_features as qa_features

LABELS = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}


def test_labels_on_first_subtoken_only(backbone_dir):
    tokenizer = load_tokenizer(str(backbone_dir))
    example = NerExample("s1", ["Merkelization", "visited", "Washington"], ["B-PER", "O", "B-LOC"])
    features = ner_features([example], tokenizer, LABELS, max_length=64)
    assert len(features) == 1
    labels, words = features.labels[0], features.word_index[0]
    first_pieces = [i for i, w in enumerate(words) if w >= 0]
    assert [words[i] for i in first_pieces] == [0, 1, 2]
    assert [labels[i] for i in first_pieces] == [1, 0, 3]
    assert all(label == IGNORE for i, label in enumerate(labels) if i not in first_pieces)
    assert len(features.input_ids[0]) > 5  # "Merkelization" was split into several pieces


def test_long_sentence_windows_label_each_word_once(backbone_dir):
    tokenizer = load_tokenizer(str(backbone_dir))
    tokens = ["Paris", "is", "the", "capital", "of", "France"] * 30
    tags = ["B-LOC", "O", "O", "O", "O", "B-LOC"] * 30
    features = ner_features([NerExample("long", tokens, tags)], tokenizer, LABELS, max_length=32)
    assert len(features) > 1
    assert all(len(ids) <= 32 for ids in features.input_ids)
    owned = [w for words in features.word_index for w in words if w >= 0]
    assert sorted(owned) == list(range(len(tokens)))  # every word predicted exactly once
    for words, labels in zip(features.word_index, features.labels):
        for w, label in zip(words, labels):
            if w >= 0:
                assert label == LABELS[tags[w]]


def test_qa_windows_recover_the_gold_span_exactly(backbone_dir):
    tokenizer = load_tokenizer(str(backbone_dir))
    filler = "The quick brown fox jumps over the lazy dog. " * 12
    context = filler + "Apple was founded by Steve Jobs in California. " + filler
    start = context.index("Steve Jobs")
    example = QaExample("q", "Who founded Apple?", context, [Answer("Steve Jobs", start)])
    features = qa_features([example], tokenizer, max_length=48, doc_stride=16, training=True)
    assert len(features) > 3
    containing = 0
    for s, e, offsets in zip(features.start_positions, features.end_positions, features.offsets):
        if s == 0:
            assert e == 0
            continue
        containing += 1
        assert context[offsets[s][0] : offsets[e][1]] == "Steve Jobs"
    assert containing >= 1


def test_qa_offsets_cover_context_only(backbone_dir):
    tokenizer = load_tokenizer(str(backbone_dir))
    example = QaExample("q", "Where?", "Café in Paris", [])
    features = qa_features([example], tokenizer, max_length=64, doc_stride=16, training=False)
    spans = [o for o in features.offsets[0] if o is not None]
    assert spans and all(0 <= a < b <= len(example.context) for a, b in spans)
    assert "".join(example.context[a:b] for a, b in spans).replace(" ", "") == "CaféinParis"


def test_cache_reuses_features(tmp_path, backbone_dir):
    tokenizer = load_tokenizer(str(backbone_dir))
    example = NerExample("s", ["Paris"], ["B-LOC"])
    calls = []

    def build():
        calls.append(1)
        return ner_features([example], tokenizer, LABELS, 16)

    first = cached(tmp_path, ("k", 1), build)
    second = cached(tmp_path, ("k", 1), build)
    third = cached(tmp_path, ("k", 2), build)
    assert len(calls) == 2  # the second call came from disk
    assert first.input_ids == second.input_ids == third.input_ids
    # a torn cache file is rebuilt, never trusted
    for path in tmp_path.glob("features-*.pt"):
        path.write_bytes(b"garbage")
    assert cached(tmp_path, ("k", 1), build).input_ids == first.input_ids
    assert len(calls) == 3


def test_qa_windows_carry_segment_ids_only_when_asked(backbone_dir):
    from mtlcli.backbones import load_tokenizer
    from mtlcli.data.examples import Answer, QaExample
    from mtlcli.spec import ModelSpec
    from mtlcli.tasks import FeatureSettings
    from mtlcli.training.batching import collate

    tokenizer = load_tokenizer(str(backbone_dir))
    context = "Apple was founded by Steve Jobs in California."
    example = QaExample("q", "Who founded Apple?", context, [Answer("Steve Jobs", context.index("Steve Jobs"))])
    with_segments = qa_features([example], tokenizer, max_length=64, doc_stride=16, training=True, segment_ids=True)
    segments = with_segments.token_type_ids[0]
    first_context = with_segments.offsets[0].index(next(o for o in with_segments.offsets[0] if o is not None))
    assert set(segments[:first_context]) == {0} and set(segments[first_context:]) == {1}
    batch = collate(with_segments, [0], "qa", tokenizer.pad_token_id)
    assert batch["token_type_ids"][0].tolist() == segments
    assert qa_features([example], tokenizer, 64, 16, training=True).token_type_ids == []
    assert "token_type_ids" not in collate(qa_features([example], tokenizer, 64, 16, True), [0], "qa", 0)
    # models saved before segment ids ran every input as segment 0, and keep doing so
    assert FeatureSettings.of(ModelSpec("old", {}, ["qa"])).segment_ids is False
