import pytest

from panza_core import config
from panza_core.errors import ConfigError


def test_defaults_file_and_env_override(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    assert config.load(path).training.rank == 8
    path.write_text("# my settings\n[training]\nrank = 16\nlr = 1e-4\n[import]\nmin_words = 5\n")
    monkeypatch.setenv("PANZA_TRAINING__EPOCHS", "7")
    loaded = config.load(path)
    assert (loaded.training.rank, loaded.training.lr, loaded.training.epochs) == (16, 1e-4, 7)
    assert loaded.imports.min_words == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[training]\nrnak = 3\n", "unknown key 'rnak'"),
        ("[trainig]\nrank = 3\n", r"unknown section \[trainig\]"),
        ("[training]\nrank = 'big'\n", "expected int"),
        ("[training\n", "not valid TOML"),
        ("[training]\ndevice = 'gpu'\n", "device = 'gpu'; choose one of auto, cpu, cuda"),
        ("[training]\ngradient_checkpointing = 'yes'\n", "choose one of auto, on, off"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(path)


def test_set_value_keeps_comments(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# keep me\n[ui]\ntheme = "panza-dark"\n')
    config.set_value("ui", "theme", "panza-light", path)
    assert "# keep me" in path.read_text()
    assert config.load(path).ui.theme == "panza-light"
    with pytest.raises(ConfigError):
        config.set_value("ui", "nope", 1, path)
