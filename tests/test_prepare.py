"""`mtl prepare`'s summary rows."""

from __future__ import annotations


def test_skipped_records_are_counted_on_the_split_they_came_from(backbone_dir, tmp_path, cls_file, qa_file):
    from mtlcli.config import resolve
    from mtlcli.prepare import prepare

    valid = tmp_path / "valid.csv"
    valid.write_text('text,label\n"Paris is in France",other\n"no label here",\n"Apple hired Steve",person\n')
    config = resolve(
        [],
        [],
        {
            "backbone": str(backbone_dir),
            "cls_train": str(cls_file),
            "cls_valid": str(valid),
            "qa_train": str(qa_file),
            "skip_bad": True,
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    rows = {(row["task"], row["split"]): row for row in prepare(config)}
    assert rows["cls", "train"]["skipped"] == 0 and rows["cls", "train"]["examples"] == 8
    assert rows["cls", "valid"]["skipped"] == 1 and rows["cls", "valid"]["examples"] == 2
    assert rows["cls", "valid"]["labels"] == 2
    assert rows["qa", "train"]["windows_per_example"] == 1.0 and rows["qa", "train"]["answers_lost_to_truncation"] == 0
