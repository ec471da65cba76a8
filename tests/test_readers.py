"""Readers: valid files of each format, every kind of bad input, and fuzzing that only InputError escapes."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlcli.data.conll import to_iob2
from mtlcli.data.examples import Answer
from mtlcli.data.readers import ReadResult, read_cls, read_ner, read_qa
from mtlcli.errors import InputError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def raises(reader, path: Path, skip_bad: bool = False) -> str:
    with pytest.raises(InputError) as caught:
        reader(path, skip_bad=skip_bad)
    return str(caught.value)


# ---- NER: CoNLL ----------------------------------------------------------------------------------

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_conll_four_columns_with_docstart_first(tmp_path):
    result = read_ner(write(tmp_path, "train.txt", CONLL_2003))
    assert isinstance(result, ReadResult) and result.skipped == []
    first, second = result.examples
    assert (first.id, first.tokens, first.tags) == (
        "train.txt:3",
        ["EU", "rejects", "German"],
        ["B-ORG", "O", "B-MISC"],
    )
    assert (second.id, second.tokens, second.tags) == ("train.txt:7", ["Peter", "Blackburn"], ["B-PER", "I-PER"])


def test_conll_tab_columns_tab_only_separators_and_no_final_newline(tmp_path):
    # WNUT-17 style: token<TAB>tag, sentences separated by a line holding a lone tab; the last line has no newline.
    text = "@paulwalk\tO\nEmpire\tB-location\nState\tI-location\n\t\nSat\tO\nJan\tO"
    examples = read_ner(write(tmp_path, "wnut.conll", text)).examples
    assert [e.tokens for e in examples] == [["@paulwalk", "Empire", "State"], ["Sat", "Jan"]]
    assert examples[0].tags == ["O", "B-location", "I-location"]
    assert examples[1].id == "wnut.conll:5"


def test_conll_docstart_ending_documents_and_iob1(tmp_path):
    # Wikigold style: IOB1 tags, "-DOCSTART- O" closing each document, spaces and CRLF-free whitespace lines.
    text = "010 I-MISC\nis O\nThe I-ORG\nMad I-ORG\n   \n-DOCSTART- O\n\nOleg I-PER\nGazmanov I-PER\n-DOCSTART- O\n"
    examples = read_ner(write(tmp_path, "wikigold.conll.txt", text)).examples
    assert [e.tags for e in examples] == [["B-MISC", "O", "B-ORG", "I-ORG"], ["B-PER", "I-PER"]]
    assert [e.id for e in examples] == ["wikigold.conll.txt:1", "wikigold.conll.txt:8"]


def test_conll_crlf_bom_and_unicode_inside_tokens(tmp_path):
    # A zero-width space and a no-break space are part of the token, not column separators.
    text = "\ufeffwatched\u200bwas O\r\nNew\u00a0York B-LOC\r\n\r\nok O\r\n"
    examples = read_ner(write(tmp_path, "a.conll", text)).examples
    assert examples[0].tokens == ["watched\u200bwas", "New\u00a0York"]
    assert examples[0].tags == ["O", "B-LOC"]


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-PER", "I-PER", "I-ORG"], ["B-PER", "I-PER", "B-ORG"]),
        (["O", "I-LOC"], ["O", "B-LOC"]),
        (["B-PER", "I-PER"], ["B-PER", "I-PER"]),
        (["I-PER", "B-PER", "I-PER", "O"], ["B-PER", "B-PER", "I-PER", "O"]),  # IOB1 B- between two entities stays
        (["B-LOC", "I-LOC", "O", "B-MISC", "I-MISC"], ["B-LOC", "I-LOC", "O", "B-MISC", "I-MISC"]),
    ],
)
def test_iob1_to_iob2(tmp_path, tags, expected):
    assert to_iob2(tags) == expected
    lines = "".join(f"w{i} {tag}\n" for i, tag in enumerate(tags))
    assert read_ner(write(tmp_path, "s.conll", lines)).examples[0].tags == expected


BAD_CONLL = """good O
sentence O

one B-PER
bad X-PER

lonely

fine B-LOC
"""


def test_conll_problems_are_all_reported(tmp_path):
    path = write(tmp_path, "bad.conll", BAD_CONLL)
    message = raises(read_ner, path)
    assert message == f"{path}:5: unknown tag 'X-PER' (expected O, B-TYPE or I-TYPE) (and 1 more)"
    iobes = write(tmp_path, "iobes.conll", "a S-PER\nb E-PER\n")
    assert raises(read_ner, iobes).endswith(":1: unknown tag 'S-PER' (expected O, B-TYPE or I-TYPE) (and 1 more)")


def test_conll_skip_bad_drops_sentences_and_returns_problems(tmp_path):
    path = write(tmp_path, "bad.conll", BAD_CONLL)
    result = read_ner(path, skip_bad=True)
    assert [e.tokens for e in result.examples] == [["good", "sentence"], ["fine"]]
    assert [(p.file, p.where, p.what) for p in result.skipped] == [
        (str(path), "5", "unknown tag 'X-PER' (expected O, B-TYPE or I-TYPE)"),
        (str(path), "7", "tag column missing"),
    ]


def test_skip_bad_still_raises_when_nothing_is_usable(tmp_path):
    assert "tag column missing" in raises(read_ner, write(tmp_path, "x.conll", "a\nb\n"), skip_bad=True)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "file is empty"),
        (b" \n\t\n", "file is empty"),
        (b"\xef\xbb\xbf", "file is empty"),
        (b"a O\nb O\n\xff\xfe\x00\x01garbage", ":3: binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":3: binary file"),
        (b"a O\n\nd\xe9j\xe0 O\n", ":3: not UTF-8: byte 0xe9"),
        ("a O\n".encode("utf-16"), "UTF-16"),
        (b"-DOCSTART- -X- O\n\n", "no examples found"),
    ],
)
def test_file_level_problems_raise_even_with_skip_bad(tmp_path, content, expected):
    path = write(tmp_path, "f.conll", content)
    message = raises(read_ner, path, skip_bad=True)
    assert message.startswith(str(path)) and expected in message


def test_missing_file(tmp_path):
    assert "cannot read file" in raises(read_ner, tmp_path / "nope.conll")
    assert "a directory, not a file" in raises(read_qa, tmp_path)  # and not a saved dataset either


# ---- NER: JSONL ----------------------------------------------------------------------------------


def test_ner_jsonl(tmp_path):
    lines = [
        {"tokens": ["Oleg", "Gazmanov", "sings"], "tags": ["I-PER", "I-PER", "O"]},
        {"tokens": ["in", "Moscow"], "ner_tags": ["O", "B-LOC"]},
    ]
    examples = read_ner(write(tmp_path, "n.jsonl", "\n".join(map(json.dumps, lines)))).examples
    assert [e.tags for e in examples] == [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    assert [e.id for e in examples] == ["n.jsonl:1", "n.jsonl:2"]


def test_ner_jsonl_problems(tmp_path):
    lines = [
        '{"tokens": ["a", "b"], "tags": ["O"]}',
        '{"tokens": ["a"], "ner_tags": [3]}',
        '{"tokens": ["a"], "tags": ["B-PER"]}',
        '{"tokens": ["a"], "tags": ["U-PER"]}',
        '{"tokens": ["a"], "labels": ["O"]}',
        '{"tokens": ["a"',
        '["a"]',
    ]
    result = read_ner(write(tmp_path, "n.json", "\n".join(lines)), skip_bad=True)
    assert [e.tokens for e in result.examples] == [["a"]]
    whats = [(p.where, p.what) for p in result.skipped]
    assert whats[0] == ("1", "tokens and tags differ in length (2 vs 1)")
    assert "tags are numbers" in whats[1][1]
    assert "unknown tag 'U-PER'" in whats[2][1]
    assert whats[3][0] == "5" and whats[3][1].startswith(
        "missing key tags (one of: tags, ner_tags); found keys: tokens, labels"
    )
    assert whats[4][1].startswith("not valid JSON") and whats[5][1].startswith("expected a JSON object")


def test_ner_jsonl_first_record_sets_the_keys(tmp_path):
    message = raises(read_ner, write(tmp_path, "n.jsonl", '{"words": ["a"], "labels": ["O"]}\n'), skip_bad=True)
    assert message.endswith(
        ":1: missing key tokens (one of: tokens); tags (one of: tags, ner_tags); found keys: words, labels"
    )


# ---- QA: SQuAD JSON ------------------------------------------------------------------------------

CONTEXT = "Denver Broncos defeated the Carolina Panthers 24-10 at Levi's Stadium."


def squad(*qas, context=CONTEXT) -> dict:
    return {
        "version": "1.1",
        "data": [{"title": "Super_Bowl_50", "paragraphs": [{"context": context, "qas": list(qas)}]}],
    }


def question(qid: str, *answers: tuple[str, int], text: str = "Who won?") -> dict:
    return {"id": qid, "question": text, "answers": [{"text": t, "answer_start": s} for t, s in answers]}


def test_squad_json(tmp_path):
    document = squad(question("q1", ("Denver Broncos", 0), ("Broncos", 7)), question("q2"))
    examples = read_qa(write(tmp_path, "dev.json", json.dumps(document))).examples
    assert [e.id for e in examples] == ["q1", "q2"]
    assert examples[0].answers == [Answer("Denver Broncos", 0), Answer("Broncos", 7)]
    assert examples[0].title == "Super_Bowl_50" and examples[0].context == CONTEXT
    assert examples[1].answers == []  # no answers: prediction-only input


def test_squad_gzip_by_extension_and_by_magic_bytes(tmp_path):
    packed = gzip.compress(json.dumps(squad(question("q1", ("Denver", 0)))).encode())
    for name in ("dev.json.gz", "dev.gz", "dev.json"):
        assert read_qa(write(tmp_path, name, packed)).examples[0].answers == [Answer("Denver", 0)]
    assert "not a valid gzip file" in raises(read_qa, write(tmp_path, "cut.json.gz", packed[:20]))


def test_squad_problems_with_json_paths(tmp_path):
    document = squad(
        question("q1", ("Carolina Panthers", 27)),  # the text occurs at 28: reported, not fixed
        question("q2", ("Giants", 0)),
        question("q1", ("Denver", 0)),
        {"id": "q4", "answers": []},
        question("q5", ("Denver", 0)),
    )
    document["data"].append({"title": "Warsaw", "paragraphs": [{"context": " ", "qas": []}]})
    document["data"].append({"title": "Normans"})
    path = write(tmp_path, "dev.json", json.dumps(document))
    assert raises(read_qa, path) == (
        f"{path}:data[0].paragraphs[0].qas[0].answers[0] (id q1): "
        "answer 'Carolina Panthers' not at answer_start 27 (it occurs at 28) (and 5 more)"
    )
    result = read_qa(path, skip_bad=True)
    assert [e.id for e in result.examples] == ["q5"]
    assert [(p.where, p.what) for p in result.skipped[1:]] == [
        ("data[0].paragraphs[0].qas[1].answers[0] (id q2)", "answer 'Giants' not found in context"),
        ("data[0].paragraphs[0].qas[2] (id q1)", "duplicate id 'q1' (first at data[0].paragraphs[0].qas[0])"),
        ("data[0].paragraphs[0].qas[3] (id q4)", "missing key 'question'"),
        ("data[1].paragraphs[0]", "empty context"),
        ("data[2]", "missing key 'paragraphs'"),
    ]


def test_squad_wrong_types(tmp_path):
    document = squad(
        {"id": "q1", "question": "Who?", "answers": [{"text": "Denver", "answer_start": "0"}]},
        {"id": ["x"], "question": "Who?"},
        "not an object",
        question("ok"),
    )
    result = read_qa(write(tmp_path, "d.json", json.dumps(document)), skip_bad=True)
    assert [p.what for p in result.skipped] == [
        "'answer_start' must be a number, found a string",
        "'id' must be a string or a number, found a list",
        "expected an object, found a string",
    ]


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"data": [', ":1: not valid JSON"),
        ('{"data": [],\n "x": }', ":2: not valid JSON: Expecting value (column 7)"),
        ("[1, 2]", "not SQuAD JSON"),
        ('{"version": "1.1"}', "not SQuAD JSON"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_squad_file_level_problems(tmp_path, content, expected):
    assert expected in raises(read_qa, write(tmp_path, "d.json", content), skip_bad=True)


# ---- QA: CSV / TSV -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "context,question,answer",
        "Context,Question,Answer",
        "passage,question,answer_text",
    ],
)
def test_qa_csv_column_variants_locate_the_answer(tmp_path, header):
    text = f'{header}\n"{CONTEXT}",Who won?,Broncos\n"{CONTEXT}",Who lost?,carolina panthers\n'
    examples = read_qa(write(tmp_path, "qa.csv", text)).examples
    assert examples[0].answers == [Answer("Broncos", 7)]
    assert examples[1].answers == [Answer("Carolina Panthers", 28)]  # case-insensitive fallback, context's spelling
    assert [e.id for e in examples] == ["qa.csv:2", "qa.csv:3"]


def test_qa_csv_with_answer_start_id_and_multiline_context(tmp_path):
    text = (
        "id,context,question,answer,answer_start\n"
        'a1,"Line one\nDenver won.",Who?,Denver,9\n'
        'a2,"Denver, Denver",Who?,Denver,8.0\n'
        "a3,Denver,Who?,,\n"
    )
    examples = read_qa(write(tmp_path, "qa.csv", text)).examples
    assert [(e.id, e.answers) for e in examples] == [
        ("a1", [Answer("Denver", 9)]),
        ("a2", [Answer("Denver", 8)]),
        ("a3", []),
    ]


def test_qa_csv_problems_name_the_line_where_the_record_starts(tmp_path):
    text = (
        "context,question,answer,answer_start\n"
        '"Two\nlines Denver",Who?,Denver,0\n'
        "Denver,Who?,Giants,\n"
        "Denver,,Denver,\n"
        "Denver,Who?,Denver,x\n"
        "Denver,Who?\n"
        "Denver,Who?,Denver,0\n"
    )
    path = write(tmp_path, "qa.csv", text)
    assert raises(read_qa, path).startswith(
        f"{path}:2: answer 'Denver' not at answer_start 0 (it occurs at 10) (and 4 more)"
    )
    result = read_qa(path, skip_bad=True)
    assert [e.id for e in result.examples] == ["qa.csv:8"]
    assert [(p.where, p.what) for p in result.skipped[1:]] == [
        ("4", "answer 'Giants' not found in context"),
        ("5", "empty question"),
        ("6", "answer_start must be a whole number, found 'x'"),
        ("7", "row has 2 field(s) but the header has 4 (quote fields that contain the delimiter)"),
    ]


def test_qa_tsv_and_missing_columns(tmp_path):
    tsv = "question\tpassage\tanswer\nWho?\tDenver won.\tDenver\n"
    assert read_qa(write(tmp_path, "qa.tsv", tsv)).examples[0].answers == [Answer("Denver", 0)]
    message = raises(read_qa, write(tmp_path, "qa.csv", "text,query,answer\nx,y,z\n"), skip_bad=True)
    assert message.endswith(
        ":1: missing column context (one of: context, Context, passage); "
        "question (one of: question, Question); found columns: text, query, answer"
    )


# ---- Classification ------------------------------------------------------------------------------


def test_cls_csv_with_quoted_newlines(tmp_path):
    text = 'text,label\nI am still waiting on my card?,card_arrival\n"Two\nlines, here",card_lost\nok, really?,x\n'
    path = write(tmp_path, "train.csv", text)
    result = read_cls(path, skip_bad=True)
    assert [(e.id, e.text, e.label) for e in result.examples] == [
        ("train.csv:2", "I am still waiting on my card?", "card_arrival"),
        ("train.csv:3", "Two\nlines, here", "card_lost"),
    ]
    assert [p.where for p in result.skipped] == ["5"]


@pytest.mark.parametrize(
    "name, content",
    [
        ("t.tsv", "sentence\tintent\nhello, there\tgreet\n"),
        ("t.csv", "Text,Label\nhello there,greet\n"),
        ("t.csv", "category,text\ngreet,hello there\n"),
        ("t.jsonl", '{"text": "hello there", "label": "greet"}\n\n'),
        ("t.jsonl", '{"sentence": "hello there", "label": 3}\n'),
    ],
)
def test_cls_formats_and_column_names(tmp_path, name, content):
    example = read_cls(write(tmp_path, name, content)).examples[0]
    assert example.text in ("hello there", "hello, there") and example.label in ("greet", "3")


def test_cls_problems(tmp_path):
    path = write(tmp_path, "c.csv", "text,label\n  ,a\nfine,\ngood,b\n")
    assert raises(read_cls, path) == f"{path}:2: empty text (and 1 more)"
    jsonl = write(
        tmp_path, "c.jsonl", '{"text": "a", "label": true}\n{"text": 5, "label": "x"}\n{"text": "b", "label": "y"}\n'
    )
    assert [p.what for p in read_cls(jsonl, skip_bad=True).skipped] == [
        "label must be a string or an integer",
        "text must be a string",
    ]


def test_cls_other_column_names_give_a_clear_error(tmp_path):
    message = raises(read_cls, write(tmp_path, "c.csv", "review,stars\ngreat,5\n"), skip_bad=True)
    assert message.endswith(
        ":1: missing column text (one of: text, sentence, sentence1, premise, question1, Text); "
        "label (one of: label, category, intent, Label); found columns: review, stars"
    )
    assert "found columns: none" in raises(read_cls, write(tmp_path, "e.csv", '""\n'))


# ---- Fuzzing: whatever the bytes, only InputError escapes -------------------------------------------

VALID = {
    read_ner: {"f.conll": CONLL_2003.encode(), "f.jsonl": b'{"tokens": ["a", "b"], "tags": ["I-X", "O"]}\n'},
    read_qa: {
        "f.json": json.dumps(squad(question("q1", ("Denver", 0)))).encode(),
        "f.csv": b'context,question,answer,answer_start\n"Denver, CO",Who?,Denver,0\n',
    },
    read_cls: {"f.csv": b'text,label\n"a, b",x\n', "f.jsonl": b'{"text": "a", "label": "x"}\n'},
}
PIECES = [
    b"\n",
    b"\t",
    b" ",
    b'"',
    b",",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"-DOCSTART-",
    b"I-",
    b"\xff",
    b"\x00",
    b"\\",
    b"0",
    b"-1",
    b"\x1f\x8b",
    b"\xef\xbb\xbf",
    b"\r",
]


@st.composite
def mutated(draw, valid: dict[str, bytes]):
    name = draw(st.sampled_from(sorted(valid)))
    data = bytearray(valid[name])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        piece = draw(st.sampled_from(PIECES) | st.binary(max_size=4))
        if draw(st.booleans()):
            data[position:position] = piece
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return name, bytes(data)


def random_files(valid: dict[str, bytes]):
    return st.tuples(st.sampled_from(sorted(valid)), st.binary(max_size=200)) | mutated(valid)


def only_input_errors(reader, name: str, data: bytes, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            result = reader(path, skip_bad=skip_bad)
        except InputError as error:
            assert str(error)
        else:
            assert result.examples


FUZZ = settings(max_examples=100, deadline=None)


@FUZZ
@given(random_files(VALID[read_ner]), st.booleans())
def test_fuzz_read_ner(file, skip_bad):
    only_input_errors(read_ner, *file, skip_bad)


@FUZZ
@given(random_files(VALID[read_qa]), st.booleans())
def test_fuzz_read_qa(file, skip_bad):
    only_input_errors(read_qa, *file, skip_bad)


@FUZZ
@given(random_files(VALID[read_cls]), st.booleans())
def test_fuzz_read_cls(file, skip_bad):
    only_input_errors(read_cls, *file, skip_bad)
