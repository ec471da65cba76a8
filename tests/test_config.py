import pytest

from mtlcli.config import TrainConfig, load_preset, parse_assignment, preset_names, resolve
from mtlcli.errors import InputError

SHIPPED = {"colab-t4", "mac-m1-pro", "cpu", "quick", "full", "high-accuracy", "demo"}


def test_every_shipped_preset_resolves():
    assert set(preset_names()) >= SHIPPED
    for name in SHIPPED:
        assert isinstance(resolve([name]), TrainConfig)


def test_presets_compose_left_to_right_and_set_wins():
    config = resolve(["cpu", "quick"])
    assert (config.backbone, config.batch_size, config.ner_train_size, config.epochs) == (
        "distilbert-base-uncased",
        8,
        2000,
        2,
    )
    assert resolve(["quick", "full"]).epochs == 5
    assert resolve(["full", "quick"]).epochs == 2
    config = resolve(["cpu"], ["batch_size=4", "lr=3e-4", "step_mode=joint"], {"batch_size": 2, "epochs": None})
    assert (config.batch_size, config.lr, config.step_mode, config.epochs) == (2, 3e-4, "joint", 2)


def test_user_toml_is_a_preset(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('epochs = 9\nsampling = "temperature:2"\n')
    assert resolve(["cpu", str(path)]).epochs == 9


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(InputError, match="unknown preset 'nope'; valid presets: .*colab-t4"):
        load_preset("nope")


def test_unknown_key_and_bad_types():
    with pytest.raises(InputError, match="unknown key 'bogus'; valid keys: backbone"):
        parse_assignment("bogus=1")
    with pytest.raises(InputError, match="'epochs' must be an integer"):
        parse_assignment("epochs=two")
    assert parse_assignment("qa_train_articles=5:") == ("qa_train_articles", "5:")


def test_config_time_errors():
    with pytest.raises(InputError, match="doc_stride"):
        resolve([], ["qa_max_length=256", "doc_stride=200"])
    with pytest.raises(InputError, match="sampling"):
        resolve([], ["sampling=temperature:abc"])
    with pytest.raises(InputError, match="step_mode"):
        resolve([], ["step_mode=sometimes"])
    with pytest.raises(InputError, match="head_lr_mult"):
        resolve([], ["head_lr_mult=0"])
    with pytest.raises(InputError, match="ner_decoding.*argmax, bio"):
        resolve([], ["ner_decoding=crf"])
