"""`mtl serve`: a model (or its ONNX export) as an HTTP service with a web page (mtlcli.serve)."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from ..errors import InputError
from ..render import console
from .common import add_examples, handle_errors
from .options import DeviceOption, ModelArgument, PrecisionOption, QuantizeOption

MISSING_EXTRA = "mtl serve needs the optional extra 'serve': pip install 'mtl[serve]'"

EXAMPLES = """
Examples:

mtl serve runs/demo/last                     # http://127.0.0.1:8000: the page; /docs: the API

curl -s localhost:8000/ner -H 'Content-Type: application/json' -d '{"texts": ["Apple hired Tim Cook."]}'

mtl serve exports/demo-onnx --host 0.0.0.0 --port 8080 --max-batch 128

Routes: POST /ner {"texts": [...]}, POST /qa {"questions": [{"id"?, "question", "context"}], "n_best"?,
"max_answer_length"?}, POST /cls {"texts": [...], "text_pairs"?: [...]} → {"results": [...]}, each result one line of
`mtl predict-* --format jsonl`; GET /health, /info, /metrics (Prometheus), /docs.
"""


@handle_errors
def serve_command(
    model: ModelArgument,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(min=1, help="Inputs gathered into one batch.")] = 64,
    max_batch_tokens: Annotated[int, typer.Option(min=1, help="Tokens gathered into one batch.")] = 16384,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long a batch waits for more requests after its first.")
    ] = 5.0,
    max_queue: Annotated[
        int, typer.Option(min=1, help="Inputs waiting for the worker; beyond: 429 with Retry-After.")
    ] = 2048,
    max_inputs: Annotated[int, typer.Option(min=1, help="Inputs per request.")] = 256,
    max_chars: Annotated[int, typer.Option(min=1, help="Characters per text, question or context.")] = 20000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Bytes per request body.")] = 1 << 20,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per request before a 503.")] = 30.0,
    threads: Annotated[
        int | None, typer.Option(min=1, envvar="MTL_THREADS", help="Inference threads (default: every core).")
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    quantize: QuantizeOption = False,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = False,
) -> None:
    """Serve a model over HTTP: one route per task, micro-batched; a web page at /, the API docs at /docs."""
    try:
        import uvicorn

        from ..serve.app import create_app
        from ..serve.schemas import ServeSettings
        from ..serve.service import Service
    except ImportError:
        raise InputError(MISSING_EXTRA) from None

    settings = ServeSettings(
        device=device,
        precision=precision,
        quantize=quantize,
        threads=threads,
        max_batch=max_batch,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_body_bytes=max_body_bytes,
        timeout_s=timeout,
    )
    service = Service(model, settings)
    with console.status(f"loading {model}"):
        service.load()
    console.print(f"serving {model} on http://{host}:{port}  (page: /, API docs: /docs; Ctrl-C stops)")
    # SIGTERM and Ctrl-C: uvicorn stops accepting and finishes the requests in flight; then it raises the signal
    # again for the handler it found, which here does nothing, so that a stop asked for exits 0
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    uvicorn.run(
        create_app(service),
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=int(timeout) + 5,
    )


add_examples(serve_command, EXAMPLES)
