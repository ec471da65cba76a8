"""`mtl prepare`: validate and tokenize the data of a config, cache the features, print a summary."""

from __future__ import annotations

from ..render import console, new_table, print_json, title
from .common import data_overrides, handle_errors
from .options import (
    BackboneOption,
    ClsTrainOption,
    ClsValidOption,
    JsonOption,
    NerTrainOption,
    NerValidOption,
    PresetOption,
    QaTrainOption,
    QaValidOption,
    SetOption,
    SkipBadOption,
)


@handle_errors
def prepare_command(
    preset: PresetOption = [],
    set_: SetOption = [],
    backbone: BackboneOption = None,
    ner_train: NerTrainOption = None,
    ner_valid: NerValidOption = None,
    qa_train: QaTrainOption = None,
    qa_valid: QaValidOption = None,
    cls_train: ClsTrainOption = None,
    cls_valid: ClsValidOption = None,
    skip_bad: SkipBadOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate data files, tokenize them and cache the features, with a summary table.

    Example: mtl prepare --preset demo
    """
    from ..config import resolve
    from ..prepare import prepare

    config = resolve(
        preset,
        set_,
        data_overrides(backbone, ner_train, ner_valid, qa_train, qa_valid, cls_train, cls_valid, skip_bad=skip_bad),
    )
    rows = prepare(config)
    if json_output:
        for row in rows:
            print_json(row)
        return
    table = new_table(
        title=f"data prepared with the {config.backbone} tokenizer (cache: {config.cache_dir})", title_justify="left"
    )
    for column in ("task", "split", "examples", "features", "tokens p50/p95/max", "details", "skipped"):
        table.add_column(column, justify="right" if column in ("examples", "features", "skipped") else "left")
    for row in rows:
        details = []
        if "entities" in row:
            details.append(" ".join(f"{t} {n}" for t, n in row["entities"].items()))
            details.append(f"{row['split_sentences']} extra windows for long sentences")
        if "windows_per_example" in row:
            details.append(f"{row['windows_per_example']} windows/question")
        if "answers_lost_to_truncation" in row:
            details.append(f"{row['answers_lost_to_truncation']} answers lost to truncation")
        if "labels" in row:
            details.append(f"{row['labels']} labels")
        table.add_row(
            title(row["task"]),
            row["split"],
            str(row["examples"]),
            str(row["features"]),
            f"{row['length_p50']}/{row['length_p95']}/{row['length_max']}",
            "; ".join(details),
            str(row["skipped"]),
        )
    console.print(table)
