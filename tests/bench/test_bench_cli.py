"""`scaling bench` end to end on a tiny config, and its bad input. No timing is asserted."""

import json
import pathlib

import pytest

from scaling.bench import cli
from scaling.errors import InputError

TINY = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "tiny.py")
FAST = ["--config", TINY, "--steps", "2", "--warmup", "0", "--matmul-sizes", "64", "--json"]
POSITIVE = ("params", "flops_per_token", "tokens_per_step", "first_step_s", "step_s", "step_s_min",
            "dispatch_s", "tokens_per_sec", "model_flops_per_sec", "peak_flops_per_sec", "mfu",
            "first_loss")


def test_json_report_has_the_documented_keys_with_positive_values(capsys):
  assert cli.main([*FAST, "--no-torch"]) == 0
  report = json.loads(capsys.readouterr().out)
  for key in POSITIVE:
    assert report[key] > 0, key
  assert set(report["compile_s"]) == {"trace", "lower", "xla", "total"}
  assert all(seconds > 0 for seconds in report["compile_s"].values())
  assert report["device"] == {"platform": "cpu", "kind": "cpu", "count": 8}  # tests/conftest.py
  assert report["matmul"]["size"] == 64 and report["matmul"]["flops_per_sec"] > 0
  assert len(report["matmul"]["rounds"]) == cli.ROUNDS  # re-timings, spread over min(5, --steps) rounds
  assert report["peak_flops_per_sec"] == max(*report["matmul"]["rounds"],
                                             *report["matmul"]["by_size"].values())
  assert report["model_flops_per_sec"] == pytest.approx(
      report["tokens_per_sec"] * report["flops_per_token"])
  assert report["mfu"] == pytest.approx(report["model_flops_per_sec"] / report["peak_flops_per_sec"])
  assert report["threads"]["xla"] >= 1 and report["threads"]["torch"] is None
  assert set(report["versions"]) == {"jax", "jaxlib", "flax"}
  assert "torch" not in report and "depths" not in report


@pytest.mark.slow  # 15 s: the PyTorch twin's own start and step
def test_torch_side_by_side_starts_from_our_weights(capsys):
  pytest.importorskip("torch")
  assert cli.main([*FAST, "--torch"]) == 0
  report = json.loads(capsys.readouterr().out)
  for key in ("step_s", "tokens_per_sec", "model_flops_per_sec", "mfu"):
    assert report["torch"][key] > 0, key
  assert report["ratio_best"] > 0
  assert report["ratio"] == pytest.approx(
      report["tokens_per_sec"] / report["torch"]["tokens_per_sec"])
  assert report["torch"]["first_loss"] == pytest.approx(report["first_loss"], rel=1e-5)
  assert report["threads"]["torch"] == report["threads"]["xla"]
  assert "torch" in report["versions"]


@pytest.mark.slow
def test_compile_time_by_depth(capsys):
  assert cli.main([*FAST, "--no-torch", "--depths", "1", "2"]) == 0
  report = json.loads(capsys.readouterr().out)
  assert [(d["n_layers"], d["scan_layers"]) for d in report["depths"]] == [
      (1, False), (1, True), (2, False), (2, True)]
  assert all(d["compile_s"] > 0 for d in report["depths"])
  assert set(report["compile_ratio"]) == {"loop", "scan"}


def test_table_output(capsys):
  assert cli.main([a for a in FAST if a != "--json"] + ["--no-torch"]) == 0
  out = capsys.readouterr().out
  assert "scaling (JAX)" in out and "MFU" in out and "compile:" in out


BAD = {
    "no_config": ([], "--config"),
    "zero_steps": (["--config", TINY, "--steps", "0"], "--steps"),
    "negative_warmup": (["--config", TINY, "--warmup", "-1"], "--warmup"),
    "zero_depth": (["--config", TINY, "--depths", "0"], "--depths"),
    "zero_matmul_size": (["--config", TINY, "--matmul-sizes", "0"], "--matmul-sizes"),
    "not_a_number": (["--config", TINY, "--steps", "many"], "--steps"),
    "unknown_argument": (["--config", TINY, "--stpes", "3"], "--stpes"),
    "missing_config_file": (["--config", "does/not/exist.py"], "exist.py"),
    "unknown_config_key": (["--config", TINY, "--config.model.widht=3"], "widht"),
    "bad_config_value": (["--config", TINY, "--config.model.n_heads=3"], "model.n_heads"),
    "torch_with_bf16": (["--config", TINY, "--torch", "--config.model.dtype=bfloat16"], "--torch"),
}


@pytest.mark.parametrize("args,named", BAD.values(), ids=BAD.keys())
def test_bad_input_is_an_input_error_naming_it(args, named):
  with pytest.raises(InputError, match=named.replace(".", r"\.")):
    cli.main(args)
