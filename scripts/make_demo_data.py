"""Build the bundled demo data (mtlcli/demo_data/) from the redistributable sources in ../shared/data.

NER: Wikigold (CC BY 4.0), split by document: the last VALID_DOCS documents are held out.
QA: SQuAD v1.1 dev (CC BY-SA 4.0), split by article as ../shared/data/README.md does: articles 0-4 are
held out (their first QA_VALID_PARAGRAPHS paragraphs), training takes the first QA_TRAIN_PARAGRAPHS
paragraphs of articles 5-47. Usage: python scripts/make_demo_data.py [SHARED_DATA_DIR]
"""

import json
import sys
from pathlib import Path

VALID_DOCS = 25
QA_TRAIN_PARAGRAPHS = 3
QA_VALID_PARAGRAPHS = 6

source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "../shared/data")
target = Path(__file__).parents[1] / "mtlcli" / "demo_data"

# Wikigold: a "-DOCSTART- O" line ends each document
documents, current = [], []
for line in (source / "wikigold/wikigold.conll.txt").read_text(encoding="utf-8").splitlines():
    if line.startswith("-DOCSTART-"):
        documents.append(current)
        current = []
    else:
        current.append(line)
if any(line.strip() for line in current):
    documents.append(current)


def write_conll(path: Path, docs: list[list[str]]) -> None:
    text = "\n".join("-DOCSTART- O\n\n" + "\n".join(doc).strip("\n") + "\n" for doc in docs)
    path.write_text(text, encoding="utf-8")


write_conll(target / "wikigold_train.conll", documents[:-VALID_DOCS])
write_conll(target / "wikigold_valid.conll", documents[-VALID_DOCS:])

squad = json.loads((source / "squad/dev-v1.1.json").read_text(encoding="utf-8"))


def write_squad(path: Path, articles: list[dict], paragraphs: int) -> None:
    data = [{"title": a["title"], "paragraphs": a["paragraphs"][:paragraphs]} for a in articles]
    path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False) + "\n", encoding="utf-8")


write_squad(target / "squad_train.json", squad["data"][5:], QA_TRAIN_PARAGRAPHS)
write_squad(target / "squad_valid.json", squad["data"][:5], QA_VALID_PARAGRAPHS)
for name in sorted(p.name for p in target.iterdir() if p.suffix in (".conll", ".json")):
    print(name, (target / name).stat().st_size)
