"""`mtl benchmark` on the tiny backbone: speed rows, offline random-init from shipped configs, JSON/CSV/Markdown/PNG
output, the joint model against single-task models, and one encoder pass per batch in a training step."""

import csv
import io
import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from mtlcli import backbones
from mtlcli.benchmark import BenchmarkOptions, TrainingProbe, csv_rows, run_benchmark
from mtlcli.benchmark.report import markdown, tables
from mtlcli.cli.benchmark import benchmark_command
from mtlcli.config import resolve
from mtlcli.errors import InputError

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("benchmark")(benchmark_command)


@app.callback()
def _root() -> None:
    """The benchmark command as `mtl` registers it."""


runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and immune to other work on the machine. Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = {"quick": True, "warmup": 1, "repeats": 2, "steps": 1, "infer_examples": 4}


def config_for(ner_file, qa_file, **more):
    return resolve(
        [],
        [],
        {
            "ner_train": str(ner_file),
            "ner_valid": str(ner_file),
            "qa_train": str(qa_file),
            "qa_valid": str(qa_file),
            "cache_dir": "",
            "precision": "fp32",
            "batch_size": 4,
            **more,
        },
    )


@pytest.fixture
def small_backbone(tmp_path, backbone_dir):
    """A second, smaller architecture with the tiny tokenizer: a config only (for --random-init)."""
    from transformers import BertConfig

    directory = tmp_path / "smaller"
    directory.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (backbone_dir / name).exists():
            shutil.copy(backbone_dir / name, directory / name)
    base = BertConfig.from_pretrained(backbone_dir)
    BertConfig(
        vocab_size=base.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=base.pad_token_id,
    ).save_pretrained(directory)
    return directory


def test_speed_table_has_one_row_per_backbone_with_positive_throughputs(
    backbone_dir, small_backbone, ner_file, qa_file
):
    result = run_benchmark(
        config_for(ner_file, qa_file),
        BenchmarkOptions(
            backbones=[str(backbone_dir), str(small_backbone)], random_init=True, tokenizer=str(backbone_dir), **FAST
        ),
    )
    assert [m["backbone"] for m in result["models"]] == [str(backbone_dir), str(small_backbone)]
    for model in result["models"]:
        assert model["parameters"]["encoder"] > 0 and model["parameters"]["heads"] > 0
        for task in ("ner", "qa"):
            train = model["train"][task]
            assert train["tokens_per_s"] > 0 and train["examples_per_s"] > 0
            assert train["encoder_passes_per_batch"] == 1.0
            assert len(train["repeats"]) == 2
            for size in ("1", "4"):
                infer = model["inference"][task][size]
                assert (
                    infer["examples_per_s"] > 0 and infer["tokens_per_s"] > 0 and 0 < infer["p50_ms"] <= infer["p95_ms"]
                )
        assert model["peak_memory_mb"]["train"] > 0 and model["peak_memory_mb"]["inference"] > 0
    big, small = result["models"]
    assert small["parameters"]["encoder"] < big["parameters"]["encoder"]
    speed = tables(result)[0]
    assert len(speed.rows) == 2
    encoder_column = [c.name for c in speed.columns].index("encoder params")
    assert (1, encoder_column) in speed.best()  # fewest parameters: the smaller backbone, highlighted
    assert result["machine"]["cores"] and result["machine"]["torch"]
    assert any("same token ids" in note for note in result["notes"])


def test_random_init_from_a_shipped_config_works_offline(monkeypatch, tmp_path, backbone_dir, ner_file, qa_file):
    def offline(name, hub_id):
        raise InputError(f"backbone '{name}' ({hub_id}) is not cached and the Hugging Face Hub is not reachable")

    monkeypatch.setattr(backbones, "_check_hub_access", offline)
    monkeypatch.setattr("socket.create_connection", lambda *a, **k: pytest.fail("tried the network"))

    # the shipped configs of the named backbones: the standard architectures, parameter for parameter
    import torch
    from transformers import AutoModel

    expected = {
        "distilbert": 66_362_880,
        "bert-base-uncased": 109_482_240,
        "roberta": 124_645_632,
        "google-bert/bert-large-uncased": 335_141_888,
    }
    for name, parameters in expected.items():
        with torch.device("meta"):
            encoder = AutoModel.from_config(backbones.load_backbone_config(name))
        assert sum(p.numel() for p in encoder.parameters()) == parameters, name
    with pytest.raises(InputError, match="not reachable"):
        backbones.load_backbone_config("someone/unknown-model")  # no shipped config: the offline error stays

    # a named backbone with a shipped config, benchmarked with random weights and no Hub at all
    tiny = tmp_path / "tiny-offline.json"
    config = json.loads((backbone_dir / "config.json").read_text())
    tiny.write_text(json.dumps({k: v for k, v in config.items() if not k.startswith(("_", "transformers_version"))}))
    shipped = backbones.shipped_config_file
    monkeypatch.setattr(
        backbones, "shipped_config_file", lambda name: tiny if name == "tiny-offline" else shipped(name)
    )
    result = run_benchmark(
        config_for(ner_file, qa_file),
        BenchmarkOptions(backbones=["tiny-offline"], random_init=True, tokenizer=str(backbone_dir), **FAST),
    )
    (model,) = result["models"]
    assert model["backbone"] == "tiny-offline" and model["train"]["ner"]["tokens_per_s"] > 0
    assert result["settings"]["random_init"] is True


def test_json_csv_markdown_and_plot_from_the_command(tmp_path, backbone_dir, ner_file, qa_file):
    common = [
        "benchmark",
        "--backbone",
        str(backbone_dir),
        "--ner-train",
        str(ner_file),
        "--ner-valid",
        str(ner_file),
        "--qa-train",
        str(qa_file),
        "--qa-valid",
        str(qa_file),
        "--quick",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--steps",
        "1",
        "--infer-examples",
        "2",
        "--batch-size",
        "2",
        "--precision",
        "fp32",
        "--set",
        "cache_dir=",
    ]
    out = tmp_path / "results"
    result = runner.invoke(app, common + ["--json", "--out", str(out), "--plot", str(out / "chart.png")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"machine", "settings", "notes", "models", "accuracy", "compare"}
    assert {"cpu", "cores", "torch", "device"} <= set(data["machine"])
    assert len(data["models"]) == 1 and data["settings"]["warmup"] == 0
    assert "Training speed and size" in result.stderr and "Inference" in result.stderr
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "benchmark.json").read_text())["models"][0]["backbone"] == str(backbone_dir)
    assert "| backbone |" in (out / "benchmark.md").read_text()

    result = runner.invoke(app, common + ["--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    row = rows[0]
    assert row["section"] == "speed" and row["backbone"] == str(backbone_dir)
    assert float(row["train_ner_tokens_per_s"]) > 0 and float(row["infer_qa_bsN_examples_per_s"]) > 0
    assert row["machine_cores"] and row["machine_torch"] and row["machine_device"] == "cpu"

    for args, message in [
        (["--json", "--csv"], "choose one"),
        (["--compare", "pairs"], "--compare must be"),
        (["--tasks", "ner,pos"], "unknown task 'pos'"),
        (["--repeats", "0"], "at least 1"),
        (["--plot", "chart.jpg"], "PNG"),
    ]:
        result = runner.invoke(app, common + args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)


def test_compare_single_task_same_budget(backbone_dir, ner_file, qa_file):
    result = run_benchmark(
        config_for(ner_file, qa_file, epochs=1),
        BenchmarkOptions(backbones=[str(backbone_dir)], compare="single-task", **FAST),
    )
    (entry,) = result["compare"]
    joint, single_ner, single_qa, total = entry["rows"]
    assert [r["model"] for r in entry["rows"]] == ["joint", "single-ner", "single-qa", "single-task total"]
    assert joint["parameters"] < total["parameters"] == single_ner["parameters"] + single_qa["parameters"]
    assert entry["ratios"]["parameters"] < 0.6
    assert entry["budget"]["train_examples"] == {"ner": 8, "qa": 8} and entry["budget"]["epochs"] == 1
    assert set(joint["metrics"]) == {"ner", "qa"} and set(single_ner["metrics"]) == {"ner"}
    assert joint["train_time_s"] > 0 and total["train_time_s"] > 0 and total["eval_time_s"] > 0
    for task in ("ner", "qa"):
        paired = entry["paired_training_speed"][task]
        assert paired["joint"]["encoder_passes_per_batch"] == paired["single"]["encoder_passes_per_batch"] == 1.0
        assert paired["ratio"] > 0
    assert result["accuracy"][0]["metrics"] == joint["metrics"]
    sections = [(r["section"], r["model"]) for r in csv_rows(result)]
    assert sections == [
        ("speed", "joint"),
        ("compare", "joint"),
        ("compare", "single-ner"),
        ("compare", "single-qa"),
        ("compare", "single-task total"),
    ]
    assert "Joint model vs one model per task" in markdown(result)

    with pytest.raises(InputError, match="at least two tasks"):
        run_benchmark(
            config_for(ner_file, qa_file),
            BenchmarkOptions(backbones=[str(backbone_dir)], tasks=["ner"], compare="single-task", **FAST),
        )


def test_a_training_step_runs_the_encoder_once_per_batch(tmp_path, backbone_dir, ner_file, qa_file):
    from mtlcli.training.trainer import Run

    config = config_for(ner_file, qa_file, backbone=str(backbone_dir), output_dir=str(tmp_path / "run"))
    run = Run(config, lambda kind, data: None, overwrite=True, resume=False)
    calls = []
    hook = run.core.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        run.train_step(("ner",))
        assert len(calls) == 1  # one batch of one task: one encoder pass, whatever the number of heads
        run.train_step(("ner", "qa"))
        assert len(calls) == 3  # the joint step mode: one pass per task batch, never one per (batch, head)
    finally:
        hook.remove()
    probe = TrainingProbe(run, "qa")
    try:
        probe.timed(2)
    finally:
        probe.close()
    summary = probe.summary()
    assert summary["encoder_passes_per_batch"] == 1.0 and summary["tokens_per_s"] > 0


def test_the_training_probe_runs_the_public_step_and_leaves_the_stream_alone(tmp_path, backbone_dir, ner_file, qa_file):
    from mtlcli.training.streams import TaskStream
    from mtlcli.training.trainer import Run

    config = config_for(ner_file, qa_file, backbone=str(backbone_dir), output_dir=str(tmp_path / "run"))
    run = Run(config, lambda kind, data: None, overwrite=True, resume=False)
    stream = run.streams["ner"]
    seen = []
    hook = run.core.encoder.register_forward_hook(
        lambda *args: seen.append((vars(stream).get("next_rows"), type(stream).next_rows))
    )
    probe = TrainingProbe(run, "ner")
    try:
        assert "next_rows" not in vars(stream)  # never patched, not even between steps
        probe.step()
        probe.timed(3)
    finally:
        probe.close()
        hook.remove()
    assert seen and all(patched is None and method is TaskStream.next_rows for patched, method in seen)
    assert run.step == run.global_step == 4  # train_step keeps the loop's counters
    (repeat,) = probe.summary()["repeats"]
    # what train_step reported for those three batches: the batch size (8 sentences, batch 4) and real tokens
    assert repeat["batches"] == 3 and repeat["examples"] == 12
    assert repeat["tokens"] == sum(batch["tokens"] for batch in probe.batches[1:]) > 0
    assert not hasattr(Run, "_train_step")  # the private step the probe once called is gone


def test_inference_times_the_predict_path_on_a_prepared_copy(monkeypatch, tmp_path, backbone_dir, ner_file, qa_file):
    from mtlcli import tasks
    from mtlcli.benchmark import measure_inference
    from mtlcli.inference.invariant import InferenceLinear, InferenceModel
    from mtlcli.inputs import QaItem, TextItem
    from mtlcli.training.trainer import Run

    config = config_for(ner_file, qa_file, backbone=str(backbone_dir), output_dir=str(tmp_path / "run"))
    run = Run(config, lambda kind, data: None, overwrite=True, resume=False)
    training = run.core.training
    calls = {"ner": [], "qa": []}
    for name, seen in calls.items():

        def spy(model, tokenizer, inputs, *args, _predict=tasks.get(name).predict, _seen=seen, **options):
            results = _predict(model, tokenizer, inputs, *args, **options)
            _seen.append((model, list(inputs), results))
            return results

        monkeypatch.setattr(tasks.get(name), "predict", spy)
    results = {
        task: measure_inference(run, task, {"infer_examples": 4}, "tiny", lambda kind, data: None) for task in calls
    }
    for task, per_size in results.items():
        # per batch size one untimed request first; then 4 requests of 1 input (batch 1), 1 request of 4 (batch 4)
        assert [len(inputs) for _, inputs, _ in calls[task]] == [1, 1, 1, 1, 1, 4, 4]
        assert all(isinstance(model, InferenceModel) for model, _, _ in calls[task])  # prepared as predict does
        assert per_size["1"]["batches"] == 4 and per_size["4"]["batches"] == 1
        assert per_size["1"]["examples"] == per_size["4"]["examples"] == 4
        assert per_size["1"]["tokens"] == per_size["4"]["tokens"] > 0  # real tokens, whatever the batching
        assert per_size["4"]["path"] == "predict"
    # raw inputs from the validation examples, decoded into predictions
    assert calls["ner"][-1][1] == [TextItem(" ".join(ex.tokens), ex.id) for ex in run.data["ner"].valid[:4]]
    assert calls["qa"][-1][1] == [QaItem(ex.question, ex.context, ex.id) for ex in run.data["qa"].valid[:4]]
    assert all(len(result.tags) == len(result.words) for result in calls["ner"][-1][2])
    assert all(isinstance(spans, list) for spans in calls["qa"][-1][2])  # the n-best answer spans of each question
    # the run's model is left as it was: the prepared copy shares its weights, not its modules
    prepared = calls["ner"][0][0]
    assert prepared.encoder.embeddings.word_embeddings.weight is run.core.encoder.embeddings.word_embeddings.weight
    assert not any(isinstance(module, InferenceLinear) for module in run.core.modules())
    assert run.core.training == training


def test_inference_clamps_ids_and_falls_back_to_evaluate(monkeypatch, tmp_path, backbone_dir, ner_file, qa_file):
    from mtlcli import tasks
    from mtlcli.benchmark import measure_inference, probes
    from mtlcli.benchmark.settings import Candidate
    from mtlcli.training.trainer import Run

    config = config_for(ner_file, qa_file, backbone=str(backbone_dir), output_dir=str(tmp_path / "run"))
    run = Run(config, lambda kind, data: None, overwrite=True, resume=False)
    model = probes.inference_model(run, Candidate("small vocabulary", str(backbone_dir), vocab_size=20, clamp=1))
    largest = []
    model.encoder.register_forward_pre_hook(
        lambda m, args, kwargs: largest.append(int(kwargs["input_ids"].max())), with_kwargs=True
    )
    monkeypatch.delitem(probes.RAW_INPUTS, "qa")  # as for a task registered outside mtl
    evaluated = []
    evaluate = tasks.get("qa").evaluate
    monkeypatch.setattr(tasks.get("qa"), "evaluate", lambda *args: evaluated.append(args[1]) or evaluate(*args))
    result = measure_inference(run, "qa", {"infer_examples": 4}, "tiny", lambda kind, data: None, model)
    assert result["4"]["path"] == "evaluate" and result["4"]["examples"] == 4 and result["4"]["tokens"] > 0
    assert [len(examples) for examples in evaluated] == [1, 1, 1, 1, 1, 4, 4]
    assert largest and max(largest) < 20  # ids beyond the vocabulary became id 1 before the encoder
