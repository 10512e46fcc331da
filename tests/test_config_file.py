"""scaling/config_file.py: a config file that returns the wrong thing, or leaves out a group a
command reads first, is one line and exit 2 for every command that takes one, and nothing is written."""

import pytest

from scaling import cli

NOT_A_CONFIG = "def get_config():\n  return 5\n"
NO_DATA = ("import ml_collections\n\n\ndef get_config():\n"
           "  return ml_collections.ConfigDict({'model': {'d_model': 8}})\n")


def _command(name: str, config: str, workdir: str) -> list[str]:
  return {"train": ["train", "--config", config, "--workdir", workdir],
          "sweep": ["sweep", "--config", config, "--workdir", workdir, "--dry-run"],
          "compile": ["compile", "--config", config, "--topology", "v5p-8"]}[name]


@pytest.mark.parametrize("command, body, named", [
    ("train", NOT_A_CONFIG, "get_config() returned int 5; it must return an "
                            "ml_collections.ConfigDict"),
    ("sweep", NOT_A_CONFIG, "get_config() returned int 5"),
    ("compile", NOT_A_CONFIG, "get_config() returned int 5"),
    ("train", NO_DATA, "scaling train: the config has no data (start from "
                       "scaling.train.config.defaults()"),
    ("compile", NO_DATA, "scaling compile: the config has no data"),
])
def test_a_config_that_is_not_one_is_one_line_exit_2(command, body, named, tmp_path, capsys):
  config = tmp_path / "mine.py"
  config.write_text(body)
  code = cli.main(_command(command, str(config), str(tmp_path / "out")))
  err = capsys.readouterr().err
  assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
  assert named in err
  assert [p.name for p in tmp_path.iterdir()] == ["mine.py"]
