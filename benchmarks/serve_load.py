"""Load test of `mtl serve` on loopback against offline `mtl predict-ner --file` on the same texts, in one run.

Texts: CoNLL-2003 test sentences as raw text (tokens joined by spaces), one sentence per request.
  1. offline: `mtl predict-ner MODEL --file texts --format jsonl` on all the texts, and on one text (its start-up);
     throughput = texts / (time of all - time of one); its output is the reference of every served result.
  2. the server (`mtl serve MODEL`, default settings) under 1, 8, 32 and 128 concurrent clients, each sending one
     sentence per request, bounded by a request count and a time limit: throughput, p50/p95/p99 latency, errors.
  3. the acceptance run: 64 clients, --requests requests (default 10,000), every result compared with offline.
The clients are aiohttp coroutines in this process, on the same 2 cores as the server, so the ratio is a
lower bound of what a server on its own machine does. Each phase records the 1-minute load average after it:
other work on the machine shows there.

    python benchmarks/serve_load.py --model runs/demo/last --conll ../shared/data/conll2003/test.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mtlcli.data.readers import read_ner  # noqa: E402  (after the sys.path lines: runs from a checkout)

MTL = [sys.executable, "-m", "mtlcli"]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def offline(model: str, texts: list[str], workdir: Path) -> tuple[list[dict], dict]:
    """The records of `predict-ner --file` for every text, and its timing."""

    def run(lines: list[str]) -> tuple[float, list[dict]]:
        path = workdir / f"texts-{len(lines)}.txt"
        path.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
        start = time.perf_counter()
        out = subprocess.run(
            [*MTL, "predict-ner", model, "--file", str(path), "--format", "jsonl"], capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        if out.returncode:
            raise SystemExit(out.stderr)
        return seconds, [json.loads(line) for line in out.stdout.splitlines()]

    one, _ = run(texts[:1])
    everything, records = run(texts)
    return records, {
        "load_average_after": round(os.getloadavg()[0], 2),
        "texts": len(texts),
        "seconds": round(everything, 2),
        "startup_seconds": round(one, 2),
        "texts_per_s": round(len(texts) / (everything - one), 1),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, options: list[str]) -> tuple[subprocess.Popen, str]:
    """`mtl serve MODEL` on a free loopback port, once /health answers 200."""
    import urllib.error
    import urllib.request

    port = free_port()
    process = subprocess.Popen([*MTL, "serve", model, "--port", str(port), *options])
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return process, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become healthy in 60 s")


async def load(session, url: str, texts: list[str], clients: int, requests: int, seconds: float) -> dict:
    """`clients` coroutines, each sending one text per request, until `requests` are done or `seconds` pass."""
    latencies, results, errors = [], {}, []
    next_index, deadline = 0, time.perf_counter() + seconds

    async def client():
        nonlocal next_index
        while next_index < requests and time.perf_counter() < deadline:
            i, next_index = next_index, next_index + 1
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/ner", json={"texts": [texts[i % len(texts)]]}) as answer:
                    body = await answer.json()
                    if answer.status != 200:
                        errors.append(f"{answer.status}: {body.get('error')}")
                        continue
            except Exception as err:
                errors.append(repr(err))
                continue
            latencies.append(time.perf_counter() - started)
            results[i] = body["results"][0]

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    p50, p95, p99 = (np.percentile(latencies, q) * 1000 for q in (50, 95, 99)) if latencies else (0, 0, 0)
    return {
        "load_average_after": round(os.getloadavg()[0], 2),
        "clients": clients,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1)},
        "_results": results,
    }


async def against_server(args, texts: list[str], reference: list[dict]) -> tuple[list[dict], dict, dict]:
    import aiohttp

    process, url = start_server(args.model, args.serve_option)
    connector = aiohttp.TCPConnector(limit=0)  # the coroutines are the concurrency limit
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await load(session, url, texts, 8, 200, 30)  # warm-up: every code path once
            sweep = []
            for clients in args.clients:
                row = await load(session, url, texts, clients, args.sweep_requests, args.sweep_seconds)
                row.pop("_results")
                log(f"{clients:4d} clients: {row['requests_per_s']} req/s, p99 {row['latency_ms']['p99']} ms")
                sweep.append(row)
            accept = await load(session, url, texts, 64, args.requests, args.accept_seconds)
            results = accept.pop("_results")
            same = sum(results[i] == reference[i % len(texts)] for i in results)
            accept |= {"results_equal_to_offline": same, "results_compared": len(results)}
            async with session.get(f"{url}/metrics") as answer:
                batches = [line for line in (await answer.text()).splitlines() if line.startswith("mtl_batch_inputs_")]
    finally:
        process.terminate()
        process.wait(timeout=60)
    return sweep, accept, {"exit_code_after_sigterm": process.returncode, "batch_metrics": batches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll", required=True, help="CoNLL-2003 test file: one request per sentence")
    parser.add_argument("--sentences", type=int, default=None, help="the first N sentences only (default: all)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--sweep-requests", type=int, default=3000, help="requests per concurrency level at most")
    parser.add_argument("--sweep-seconds", type=float, default=30, help="seconds per concurrency level at most")
    parser.add_argument("--requests", type=int, default=10000, help="requests of the 64-client acceptance run")
    parser.add_argument("--accept-seconds", type=float, default=600)
    parser.add_argument("--serve-option", action="append", default=[], help="passed to mtl serve (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_load.json")
    args = parser.parse_args()
    from machine import machine

    texts = [" ".join(s.tokens) for s in read_ner(args.conll).examples[: args.sentences]]
    with tempfile.TemporaryDirectory() as tmp:
        reference, offline_row = offline(args.model, texts, Path(tmp))
    log(f"offline predict-ner --file: {offline_row['texts_per_s']} texts/s")
    sweep, accept, server = asyncio.run(against_server(args, texts, reference))
    accept["throughput_vs_offline"] = round(accept["requests_per_s"] / offline_row["texts_per_s"], 2)
    report = {
        "machine": machine(),
        "model": args.model,
        "texts": f"{args.conll}: {len(texts)} sentences, one per request",
        "offline_predict_ner_file": offline_row,
        "sweep": sweep,
        "acceptance_64_clients": accept,
        "server": server,
        "command": " ".join(["python", *sys.argv]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(json.dumps({k: report[k] for k in ("offline_predict_ner_file", "acceptance_64_clients")}, indent=2))


if __name__ == "__main__":
    main()
