"""`mtl serve` in process (FastAPI's test client): every route, every kind of bad request, batching, limits."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import tiny_model_dir
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mtlcli.cli.main import app as cli
from mtlcli.serve.app import create_app
from mtlcli.serve.schemas import ServeSettings
from mtlcli.serve.service import Service

TEXTS = ["Apple hired Steve Jobs in California.", "Paris is in France", "  Angela Merkel  visited Washington ."]
QUESTIONS = [
    {"id": "a", "question": "Who founded Apple?", "context": "Apple was founded by Steve Jobs in California."},
    {"id": 7, "question": "Where is Microsoft based?", "context": "Microsoft is based in Redmond, near Seattle."},
]


def serve(model_dir, **settings):
    service = Service(model_dir, ServeSettings(device="cpu", precision="fp32", **settings))
    service.load()
    return service, TestClient(create_app(service))


@pytest.fixture(scope="module")
def client(tagging_model_dir):
    service, client = serve(tagging_model_dir, max_inputs=8, max_chars=300, max_body_bytes=4000)
    with client:
        yield client


def offline(model_dir, command: str, *args, stdin: str | None = None) -> list[dict]:
    """What `mtl predict-* --format jsonl` prints, one object per line."""
    result = CliRunner().invoke(
        cli,
        [command, str(model_dir), *args, "--format", "jsonl", "--device", "cpu", "--precision", "fp32"],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_health_and_info(client, tagging_model_dir):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert [t["name"] for t in info["tasks"]] == ["ner", "qa", "cls"]
    ner = info["tasks"][0]
    assert ner["labels"][0] == "O" and ner["entity_colors"] == {"PER": "#008080", "LOC": "#008000"}
    assert info["backend"] == "torch" and info["limits"]["max_inputs"] == 8 and info["versions"]["mtl"]


def test_ner_results_are_the_offline_jsonl_lines(client, tagging_model_dir):
    answer = client.post("/ner", json={"texts": TEXTS})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results == offline(tagging_model_dir, "predict-ner", *TEXTS)
    assert all(r["entities"] for r in results)  # the fixture's head tags every word


def test_qa_results_are_the_offline_jsonl_lines_with_n_best(client, tagging_model_dir):
    answer = client.post("/qa", json={"questions": QUESTIONS, "n_best": 3, "max_answer_length": 5})
    assert answer.status_code == 200
    results = answer.json()["results"]
    stdin = "".join(json.dumps(q) + "\n" for q in QUESTIONS)
    assert results == offline(tagging_model_dir, "predict-qa", "--n-best", "3", "--max-answer-length", "5", stdin=stdin)
    assert [r["id"] for r in results] == ["a", "7"] and len(results[0]["n_best"]) == 3


def test_cls_results_are_the_offline_jsonl_lines(client, tagging_model_dir):
    results = client.post("/cls", json={"texts": TEXTS}).json()["results"]
    assert results == offline(tagging_model_dir, "predict-cls", *TEXTS)
    assert set(results[0]["probabilities"]) == {"a", "b"}


def test_cls_takes_sentence_pairs_as_predict_cls_does(client, tagging_model_dir):
    pairs = ["Paris is in France", "Obama was born in Hawaii", "The dog jumps"]
    results = client.post("/cls", json={"texts": TEXTS, "text_pairs": pairs}).json()["results"]
    stdin = "".join(json.dumps({"text": t, "text_pair": p}) + "\n" for t, p in zip(TEXTS, pairs))
    assert results == offline(tagging_model_dir, "predict-cls", "--input-format", "jsonl", stdin=stdin)
    assert results[1]["text_pair"] == pairs[1]


def test_an_onnx_export_is_served_on_onnxruntime(tagging_model_dir, tmp_path):
    from mtlcli.export.onnx import export_onnx

    (tmp_path / "onnx").mkdir()
    export_onnx(tagging_model_dir, tmp_path / "onnx")
    service = Service(tmp_path / "onnx", ServeSettings())
    service.load()
    with TestClient(create_app(service)) as client:
        assert client.get("/info").json()["backend"] == "onnxruntime"
        results = client.post("/ner", json={"texts": TEXTS}).json()["results"]
        questions = client.post("/qa", json={"questions": QUESTIONS}).json()["results"]
    command = ["predict-ner", str(tmp_path / "onnx"), *TEXTS, "--format", "jsonl"]
    assert results == [json.loads(line) for line in CliRunner().invoke(cli, command).stdout.splitlines()]
    assert [q["id"] for q in questions] == ["a", "7"]


BAD_REQUESTS = [
    # (what, route, body bytes or JSON, headers, status, words the error must name)
    ("malformed JSON", "/ner", b'{"texts": [', None, 400, "not valid JSON"),
    ("non-UTF-8 body", "/ner", b'{"texts": ["caf\xe9"]}', None, 400, "not UTF-8"),
    ("empty body", "/ner", b"", None, 422, "body is empty"),
    ("body not an object", "/ner", [], None, 422, "JSON object"),
    ("texts missing", "/ner", {}, None, 422, "texts: Field required"),
    ("texts not a list", "/ner", {"texts": "Paris"}, None, 422, "texts: Input should be a valid list"),
    ("text not a string", "/ner", {"texts": ["Paris", 3]}, None, 422, "texts[1]: Input should be a valid string"),
    ("empty list", "/ner", {"texts": []}, None, 422, "texts: List should have at least 1 item"),
    ("empty text", "/ner", {"texts": ["Paris", ""]}, None, 422, "texts[1]: is empty"),
    ("pairs not one per text", "/cls", {"texts": TEXTS, "text_pairs": ["x"]}, None, 422, "1 pair texts for 3 texts"),
    (
        "pair text too long",
        "/cls",
        {"texts": ["a"], "text_pairs": ["b" * 301]},
        None,
        422,
        "text_pairs[0]: 301 characters",
    ),
    ("blank text", "/cls", {"texts": [" \n "]}, None, 422, "texts[0]: is empty"),
    ("unknown field", "/ner", {"texts": ["Paris"], "lang": "en"}, None, 422, "lang: Extra inputs are not permitted"),
    ("too many inputs", "/ner", {"texts": ["Paris"] * 9}, None, 413, "texts: 9 inputs, at most 8"),
    ("text too long", "/cls", {"texts": ["Paris " * 60]}, None, 422, "texts[0]: 360 characters, at most 300"),
    ("body too large", "/ner", {"texts": ["x" * 5000]}, None, 413, "larger than 4000 bytes"),
    ("wrong content type", "/ner", b"texts=Paris", {"content-type": "text/plain"}, 415, "application/json"),
    (
        "question missing",
        "/qa",
        {"questions": [{"context": "Paris."}]},
        None,
        422,
        "questions[0].question: Field required",
    ),
    (
        "context empty",
        "/qa",
        {"questions": [{"question": "Who?", "context": ""}]},
        None,
        422,
        "questions[0].context: is empty",
    ),
    ("bad n_best", "/qa", {"questions": QUESTIONS[:1], "n_best": 0}, None, 422, "n_best: Input should be greater than"),
    ("bad id type", "/qa", {"questions": [{**QUESTIONS[0], "id": [1]}]}, None, 422, "questions[0].id"),
    (
        "context too long",
        "/qa",
        {"questions": [{**QUESTIONS[0], "context": "a" * 301}]},
        None,
        422,
        "questions[0].context: 301 characters",
    ),
    (
        "max_answer_length not a number",
        "/qa",
        {"questions": QUESTIONS, "max_answer_length": "x"},
        None,
        422,
        "max_answer_length",
    ),
    ("unknown route", "/pos", {"texts": ["Paris"]}, None, 404, "no route POST /pos"),
    ("wrong method", "/ner", None, None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize("what, route, body, headers, status, named", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_gets_a_4xx_json_error_naming_the_problem(client, what, route, body, headers, status, named):
    if body is None:
        answer = client.get(route)
    elif isinstance(body, bytes):
        answer = client.post(route, content=body, headers=headers or {"content-type": "application/json"})
    else:
        answer = client.post(route, json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert named in answer.json()["error"] and "Traceback" not in answer.text
    assert client.get("/health").status_code == 200


def test_a_task_the_model_lacks_is_404_naming_its_tasks(backbone_dir, tmp_path):
    tiny_model_dir("bert", backbone_dir, tmp_path / "model", tasks=("ner",))
    _, client = serve(tmp_path / "model")
    with client:
        answer = client.post("/qa", json={"questions": QUESTIONS})
        assert answer.status_code == 404 and "its tasks: NER" in answer.json()["error"]
        assert client.get("/info").json()["tasks"][0]["name"] == "ner"
        assert "/qa" not in client.get("/openapi.json").json()["paths"]


def block_worker(service) -> threading.Event:
    """Keep the inference worker busy until the returned event is set."""
    release, started = threading.Event(), threading.Event()
    service.worker.submit(lambda: (started.set(), release.wait(10)))
    assert started.wait(5)
    return release


def post_in_threads(client, bodies: list[dict], route: str = "/ner") -> list:
    answers = [None] * len(bodies)

    def send(i):
        answers[i] = client.post(route, json=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    return threads, answers


def test_concurrent_requests_are_batched_and_each_gets_its_own_results(tagging_model_dir):
    service, client = serve(tagging_model_dir, max_wait_ms=500)
    with client:
        alone = [client.post("/ner", json={"texts": [text]}).json()["results"][0] for text in TEXTS]
        release = block_worker(service)
        threads, answers = post_in_threads(client, [{"texts": [text]} for text in TEXTS])
        while service.batcher.queued_inputs < len(TEXTS):
            threading.Event().wait(0.01)
        release.set()
        for thread in threads:
            thread.join()
        assert [a.json()["results"][0] for a in answers] == alone  # the batch changed nothing
        metrics = client.get("/metrics").text
    # three single-text batches before, then one batch of all three
    assert 'mtl_batch_inputs_bucket{le="2.0"} 3.0' in metrics and "mtl_batch_inputs_count 4.0" in metrics
    assert 'mtl_requests_total{code="200",route="/ner"} 6.0' in metrics


def test_a_full_queue_answers_429_with_retry_after(tagging_model_dir):
    service, client = serve(tagging_model_dir, max_queue=2)
    with client:
        release = block_worker(service)
        threads, answers = post_in_threads(client, [{"texts": TEXTS[:2]}])
        while service.batcher.queued_inputs < 2:
            threading.Event().wait(0.01)
        refused = client.post("/ner", json={"texts": TEXTS[:1]})
        release.set()
        threads[0].join()
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"] and answers[0].status_code == 200
        assert 'mtl_errors_total{route="/ner"} 1.0' in client.get("/metrics").text


def test_a_request_past_its_timeout_is_503_and_never_run(tagging_model_dir):
    service, client = serve(tagging_model_dir, timeout_s=0.2)
    with client:
        release = block_worker(service)
        answer = client.post("/cls", json={"texts": TEXTS})
        release.set()
        assert answer.status_code == 503 and "no answer within 0.2 s" in answer.json()["error"]
        assert client.post("/cls", json={"texts": TEXTS}).status_code == 200


def test_the_page_offers_the_models_tasks_and_fetches_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for form in ('id="ner"', 'id="qa"', 'id="cls"', 'fetch("/info")'):
        assert form in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/docs").status_code == 200


def test_serve_refuses_a_directory_that_is_no_model(tmp_path):
    result = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "config.json missing" in result.output


def test_serve_without_the_extra_names_it(monkeypatch, tagging_model_dir):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    result = CliRunner().invoke(cli, ["serve", str(tagging_model_dir)])
    assert result.exit_code == 2 and "pip install 'mtl[serve]'" in result.output
