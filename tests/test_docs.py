"""What the README and docs tell a new user matches what the code does."""

import pathlib
import re
import runpy

from scaling import cli, demo

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_tensorboard_is_named_with_how_to_install_it():
  """TensorBoard is not a dependency: every `tensorboard --logdir` says how to get it."""
  lines = [line for doc in DOCS for line in doc.read_text().splitlines()
           if "tensorboard --logdir" in line]
  assert lines
  assert all("pip install tensorboard" in line for line in lines), lines


def test_readme_documents_the_signal_exit_codes():
  text = (REPO / "README.md").read_text()
  codes = {name: cli.signal_exit_code(name) for name in ("SIGINT", "SIGTERM")}
  assert codes == {"SIGINT": 130, "SIGTERM": 143}
  assert re.search(r"130\s+for SIGINT, 143 for SIGTERM", text)


def test_the_isoflop_example_centres_where_the_demo_measured_the_optimum():
  """README: the tiny optimum is ~60 tokens per parameter; the example sweep must agree."""
  example = runpy.run_path(str(REPO / "configs" / "sweeps" / "isoflop_tiny.py"))["get_config"]()
  assert (example.sweep.optimum_tokens_per_param
          == demo.demo_config().sweep.optimum_tokens_per_param == 60.0)
  assert "centred on 60 tokens per" in (REPO / "README.md").read_text().replace("\n", " ")


def test_the_readme_exit_code_table_has_every_command():
  """One row per command of `scaling --help`, each saying what 0, 1, 2 and 130 / 143 mean."""
  text = (REPO / "README.md").read_text()
  header = "| command | 0 | 1 | 2 | 130 / 143 |"
  assert header in text
  table = text.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]  # past |---|
  rows = {line.split("|")[1].strip(): line for line in table}
  assert set(rows) == {f"`scaling {name}`" for name in cli.COMMANDS}
  for name, row in rows.items():
    cells = [cell.strip() for cell in row.split("|")[2:-1]]
    assert len(cells) == 4 and all(cells), (name, cells)
