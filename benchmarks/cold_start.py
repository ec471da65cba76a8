"""Cold start of one-shot commands: each run is a new process, as a user's shell call is.

  mtl --help
  mtl predict-ner MODEL "one sentence"      (PyTorch; --precision auto)
  mtl predict-ner EXPORT "one sentence"     (an ONNX export of MODEL, run by onnxruntime)

The torch command also runs with torch and oneDNN dispatching as on a CPU without AVX512
(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2: fp32, as on most laptops). Commands alternate, --runs of each,
after one untimed call of each (the page cache warm, Python's bytecode caches written: as for an installed
package, so PYTHONDONTWRITEBYTECODE is dropped for the children); median and min wall seconds. One more call of
each under `python -X importtime` records what it imports: seconds per top-level package.

    python benchmarks/cold_start.py --model runs/export-minilm/last
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

TEXT = "Apple was founded by Steve Jobs in California."
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def environment(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | extra
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run(args: list[str], env: dict, importtime: bool = False) -> tuple[float, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "mtlcli", *args]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stderr


def heaviest_imports(stderr: str) -> dict[str, float]:
    """Import seconds per top-level package (the self times of all its modules, -X importtime), from 20 ms."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            own, _, name = line[len("import time:") :].split("|")
            if own.strip().isdigit():
                package = name.strip().split(".")[0]
                totals[package] = totals.get(package, 0.0) + int(own) / 1e6
    return {k: round(v, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v >= 0.02}


def capability(env: dict) -> str:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an mtl model directory with an NER head")
    parser.add_argument("--onnx", help="its ONNX export (default: exported here, to a temporary directory)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/cold_start.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx
        if onnx is None:
            onnx = str(Path(tmp) / "onnx")
            log(f"exporting {args.model} to ONNX")
            run(["export", args.model, "--format", "onnx", "-o", onnx], environment({}))
        predict = ["predict-ner", "{}", TEXT, "--format", "jsonl"]
        cases = {
            "mtl --help": (["--help"], {}),
            "predict-ner, torch": ([a.format(args.model) for a in predict], {}),
            "predict-ner, torch, AVX2 dispatch": ([a.format(args.model) for a in predict], AVX2),
            "predict-ner, ONNX export": ([a.format(onnx) for a in predict], {}),
        }
        envs = {name: environment(extra) for name, (_, extra) in cases.items()}
        for name, (command, _) in cases.items():
            run(command, envs[name])  # untimed: caches
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, (command, _) in cases.items():
                times[name].append(run(command, envs[name])[0])
        rows = {}
        for name, (command, extra) in cases.items():
            _, stderr = run(command, envs[name], importtime=True)
            rows[name] = {
                "command": "mtl " + " ".join(f'"{a}"' if " " in a else a for a in command),
                "environment": extra,
                "median_s": round(statistics.median(times[name]), 3),
                "min_s": round(min(times[name]), 3),
                "runs_s": [round(t, 3) for t in times[name]],
                "imports_s": heaviest_imports(stderr),
            }
            if "torch" in name:
                rows[name]["cpu_capability"] = capability(envs[name])
            log(
                f"{name}: median {rows[name]['median_s']} s, min {rows[name]['min_s']} s; imports {rows[name]['imports_s']}"
            )
    result = {
        "command": "python benchmarks/cold_start.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "text": TEXT,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
