"""`scaling compile`: the train step compiled by libtpu for a TPU slice, its memory and cost.

The tiny model (configs/tiny.py in bf16, at d_model 128 with one 128-wide head) compiles in
seconds. 128 because a TPU lays arrays out in tiles of 128 along their minor dimension: narrower
arrays are mostly padding, and compiled bytes would not be comparable with our count.
"""

import json
import os
import subprocess
import sys

import pytest

from scaling.compile import aot, cli, topology

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--config", "configs/tiny.py", "--config.model.dtype=bfloat16", "--config.model.d_model=128",
        "--config.model.n_heads=1"]
FSDP = ["--config.mesh.data=1", "--config.mesh.fsdp=-1"]
DATA = ["--config.mesh.data=-1", "--config.mesh.fsdp=1"]


def assert_honest_bound(report: dict) -> None:
  """What every compiled report must say of its roofline, whatever the configuration."""
  estimate = report["estimate"]
  seconds = estimate["seconds"]
  assert set(seconds) == {"compute", "hbm", "ici", "dcn"}
  assert estimate["step_seconds_lower_bound"] == max(seconds.values())
  assert estimate["step_seconds_serial"] == pytest.approx(sum(seconds.values()))
  assert seconds[estimate["bound_by"]] == estimate["step_seconds_lower_bound"]
  assert 0 < estimate["mfu_upper_bound"] <= 1, estimate
  assert estimate["bytes_accessed_per_step"] >= estimate["bytes_accessed_xla_reported"] > 0
  assert 0.9 <= report["flops"]["ratio"] <= 1.6, report["flops"]
  assert "unresolved" not in report["flops"]["trip_counts_from"]


def compile_tiny(name: str, *overrides: str, num_slices: int = 1) -> dict:
  cfg, resolved = cli.load_train_config(os.path.join(REPO, TINY[1]), [*TINY[2:], *overrides])
  report = aot.compile_step(cfg, resolved, topology.parse(name, num_slices))
  if "estimate" in report:
    assert_honest_bound(report)
  return report


@pytest.fixture(scope="module")
def one_host_fsdp():
  """Through the command line, as a user runs it: stdout is the JSON object, stderr stays empty."""
  result = subprocess.run([sys.executable, "-m", "scaling.cli", "compile", *TINY, *FSDP,
                           "--topology", "v5litepod-4", "--json"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""  # no libtpu start-up noise: one-line-on-stderr contract
  report = json.loads(result.stdout)
  assert_honest_bound(report)
  return report


@pytest.fixture(scope="module")
def one_host_data():
  return compile_tiny("v5litepod-4", *DATA)


@pytest.fixture(scope="module")
def four_hosts_fsdp():
  return compile_tiny("v5p-32", *FSDP)


def test_tiny_config_compiles_for_one_and_four_hosts(one_host_fsdp, four_hosts_fsdp):
  for report, devices, processes, kind in ((one_host_fsdp, 4, 1, "TPU v5 lite"),
                                           (four_hosts_fsdp, 16, 4, "TPU v5")):
    assert (report["devices"], report["processes"], report["device_kind"]) == (devices, processes, kind)
    assert report["mesh"] == {"data": 1, "fsdp": devices, "tensor": 1}
    memory = report["memory_per_device"]
    assert memory["fits"] and 0 < memory["total"] < memory["hbm"]
    assert memory["headroom"] == memory["hbm"] - memory["total"]
    assert set(report["collectives"]) == {"all-gather", "reduce-scatter", "all-reduce",
                                          "all-to-all", "collective-permute"}
    # fsdp gathers parameters for the forward pass and reduces gradients (as a reduce-scatter or
    # an all-reduce, as XLA chooses).
    assert report["collectives"]["all-gather"]["count"] > 0
    estimate = report["estimate"]
    assert 0 < estimate["mfu_upper_bound"] <= 1
    assert estimate["step_seconds_lower_bound"] == max(estimate["seconds"].values())


def test_state_bytes_match_the_compiled_arguments(one_host_fsdp, one_host_data, four_hosts_fsdp):
  """Our sharding's count of params + Adam moments per device against what XLA was given (the
  arguments add the batch and a scalar)."""
  for report in (one_host_fsdp, one_host_data, four_hosts_fsdp):
    predicted, compiled = report["state_bytes"]["total"], report["memory_per_device"]["arguments"]
    assert abs(compiled - predicted) <= 0.1 * predicted, (predicted, compiled)


def test_argument_memory_falls_about_linearly_with_the_fsdp_axis(one_host_fsdp, one_host_data,
                                                                 four_hosts_fsdp):
  replicated = one_host_data["memory_per_device"]["arguments"]
  for report in (one_host_fsdp, four_hosts_fsdp):
    fsdp = report["mesh"]["fsdp"]
    shrink = replicated / report["memory_per_device"]["arguments"]
    # Norm scales (and the batch) are not sharded, so slightly less than linear.
    assert 0.8 * fsdp <= shrink <= fsdp, (fsdp, shrink)


def test_xla_flops_agree_with_the_model_count(one_host_fsdp, four_hosts_fsdp):
  """XLA counts a little more than the chinchilla convention: softmax and norms in full, the loss,
  the gradient-norm clip and the AdamW update, none of which the convention counts; and a little
  less: the embedding lookup is a gather, which the convention counts as a one-hot matmul."""
  for report in (one_host_fsdp, four_hosts_fsdp):
    flops = report["flops"]
    assert 0.9 <= flops["ratio"] <= 1.6, flops
    assert flops["model_per_step"] == pytest.approx(
        flops["xla_per_step"] / flops["ratio"])


@pytest.mark.parametrize("scan", ["true", "false"])
@pytest.mark.parametrize("remat", ["none", "full"])
def test_flops_with_every_trip_agree_with_the_model_scanned_or_not_remat_or_not(scan, remat):
  """`compile_tiny` checks the ratio (and the rest of the bound) on every report."""
  report = compile_tiny("v5litepod-4", *FSDP, f"--config.model.scan_layers={scan}",
                        f"--config.model.remat={remat}", "--config.model.n_layers=4")
  flops = report["flops"]
  if scan == "true":
    assert flops["loops"]["4"] == 2  # the blocks forward and backward
    assert flops["xla_per_step"] > 2 * flops["xla_reported_per_step"]
  if remat == "full":  # the forward pass again in the backward: about 4/3 of the FLOPs
    assert flops["ratio"] > 1.2


def test_a_scanned_models_hbm_bytes_grow_with_its_depth():
  bytes_by_depth = {}
  for layers in (2, 6):
    report = compile_tiny("v5litepod-4", *FSDP, "--config.model.scan_layers=true",
                          f"--config.model.n_layers={layers}")
    bytes_by_depth[layers] = report["estimate"]["bytes_accessed_per_step"]
    if layers == 6:  # XLA's own figure counts the one block's body once, whatever the depth
      assert report["estimate"]["bytes_accessed_xla_reported"] < 0.6 * bytes_by_depth[6]
  assert bytes_by_depth[6] > 2 * bytes_by_depth[2], bytes_by_depth


def test_two_slices_compile_with_data_across_the_data_center_network():
  report = compile_tiny("v5litepod-4", "--config.mesh.data=2", "--config.mesh.fsdp=-1",
                        num_slices=2)
  assert (report["devices"], report["processes"], report["slices"]) == (8, 2, 2)
  assert report["mesh"] == {"data": 2, "fsdp": 4, "tensor": 1}
  # The gradients' all-reduce over the slices leaves the program as megascale calls.
  assert report["cross_slice"]["count"] > 0 and report["cross_slice"]["bytes"] > 0
  estimate = report["estimate"]
  assert estimate["seconds"]["dcn"] > 0 and estimate["dcn_bytes_per_step"] > 0


def test_too_big_for_hbm_exits_1_with_the_figures_and_one_line_of_advice(capsys):
  # 8M-token vocabulary, unsharded: params and Adam moments alone are ~17 GB per 16 GiB chip.
  code = cli.main([*TINY, *DATA, "--config.model.vocab_size=8388608", "--topology", "v5litepod-4",
                   "--json"])
  out, err = capsys.readouterr()
  assert code == 1
  memory = json.loads(out)["memory_per_device"]
  assert memory["hbm"] == 15.75 * 2**30  # what XLA lets a program use of a v5e's 16 GiB
  # XLA names the temporaries; the total adds the parameters and moments it was handed.
  assert not memory["fits"] and memory["total"] > memory["temp"] > 0
  assert len(err.splitlines()) == 1 and err.startswith("error: v5litepod-4: does not fit: ")
  assert "GiB HBM" in err and "--config.mesh.fsdp=4" in err


def test_unknown_topology_exits_2_with_one_line():
  result = subprocess.run([sys.executable, "-m", "scaling.cli", "compile", *TINY,
                           "--topology", "v5p-17"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 2
  assert result.stderr.count("\n") == 1 and "v5p-17" in result.stderr


def test_without_libtpu_says_how_to_install_it(monkeypatch, capsys):
  from scaling import cli as scaling_cli
  from scaling import jax_platforms

  monkeypatch.setattr(jax_platforms, "libtpu_installed", lambda environ: False)
  assert scaling_cli.main(["compile", *TINY, "--topology", "v5litepod-4"]) == 2
  err = capsys.readouterr().err
  assert len(err.splitlines()) == 1 and 'pip install -e ".[tpu]"' in err


@pytest.mark.parametrize("hlo, named", [("DIR", "is a directory; name a file"),
                                        ("missing/x.hlo", "missing does not exist"),
                                        ("gs://bucket/x.hlo", "a local file is needed")])
def test_an_hlo_path_that_cannot_be_written_is_refused_before_compiling(hlo, named, tmp_path,
                                                                        capsys):
  from scaling import cli as scaling_cli

  hlo = str(tmp_path) if hlo == "DIR" else hlo if "://" in hlo else str(tmp_path / hlo)
  assert scaling_cli.main(["compile", *TINY, "--topology", "v5litepod-4", "--hlo", hlo]) == 2
  out, err = capsys.readouterr()
  assert out == "" and err.startswith("error: --hlo ") and err.count("\n") == 1, err
  assert named in err and os.listdir(tmp_path) == []


def test_a_pallas_kernel_in_a_scan_counts_its_cost_estimate_once_per_trip():
  """The hook for kernels XLA cannot see into: a `pallas_call`'s cost estimate, which XLA's cost
  analysis adds once per loop body, and `hlo.summarize` once per trip."""
  import jax
  import jax.numpy as jnp
  from jax.experimental import pallas as pl
  from jax.sharding import Mesh, NamedSharding, PartitionSpec

  from scaling.compile import hlo

  def double(x_ref, o_ref):
    o_ref[...] = x_ref[...] * 2.0

  def kernel(x):
    return pl.pallas_call(double, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                          cost_estimate=pl.CostEstimate(flops=10**9, transcendentals=0,
                                                        bytes_accessed=8192))(x)

  def three_times(x):
    return jax.lax.scan(lambda carry, _: (kernel(carry), None), x, None, length=3)[0]

  device = topology.devices(topology.parse("v5litepod-4"))[0]
  x = jax.ShapeDtypeStruct((8, 128), jnp.float32,
                           sharding=NamedSharding(Mesh([device], ("x",)), PartitionSpec()))
  compiled = jax.jit(three_times).lower(x).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  summary = hlo.summarize(compiled.as_text())
  assert 10**9 <= cost["flops"] < 1.01e9  # XLA: the loop body once
  assert (summary.kernel_flops, summary.kernel_flops_once) == (3e9, 1e9)


def _reductions(hlo_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """(dtype, shape) of every array an all-reduce or reduce-scatter in the optimized HLO returns."""
  import re

  arrays = []
  for line in hlo_text.splitlines():
    op = re.search(r" (?:all-reduce|reduce-scatter)(?:-start)?\(", line)
    if op and " = " in line[:op.start()]:
      result_type = line[line.index(" = ") + 3:op.start()]
      arrays += [(dtype, tuple(int(n) for n in dims.split(",") if n))
                 for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", result_type)]
  return arrays


@pytest.mark.parametrize("grad_dtype", ["float32", "bfloat16"])
def test_weight_gradients_reduce_in_grad_dtype_and_the_embeddings_is_never_all_reduced(grad_dtype,
                                                                                       tmp_path):
  """A bf16 step over fsdp: the matmul weights' gradients are summed over the devices in
  grad_dtype; the [V, D] embedding's gradient never crosses the devices whole (XLA moves each
  device's share of the batch's rows instead, and scatters into its own slice of D)."""
  V, D = 1024, 128
  cfg, resolved = cli.load_train_config(os.path.join(REPO, TINY[1]), [
      *TINY[2:], *FSDP, f"--config.model.vocab_size={V}", f"--config.grad_dtype={grad_dtype}"])
  aot.compile_step(cfg, resolved, topology.parse("v5litepod-4"), hlo_path=str(tmp_path / "step.hlo"))
  reductions = _reductions((tmp_path / "step.hlo").read_text())
  matrices = {dtype for dtype, shape in reductions if len(shape) >= 2 and shape != (V, D)}
  assert matrices == {"f32" if grad_dtype == "float32" else "bf16"}, reductions
  assert not [shape for _, shape in reductions if shape == (V, D)], reductions


@pytest.mark.parametrize("rules_text, helps", [
    ("", "more fsdp (--config.mesh.fsdp=4 --config.mesh.data=1)"),
    ("embed=tensor,heads=fsdp,mlp=fsdp,vocab=fsdp",
     "more tensor (--config.mesh.tensor=4 --config.mesh.data=1)"),
    ("embed=none", "sharded parameters (--config.mesh.rules=embed=fsdp)")])
def test_the_advice_to_shard_names_the_axis_the_runs_rules_put_parameters_on(rules_text, helps):
  report = {"topology": "v5litepod-8", "devices": 8, "mesh": {"data": 2, "fsdp": 2, "tensor": 2},
            "memory_per_device": {"hbm": 2**30, "total": 2**31}, "state_bytes": {"total": 2**31},
            "config": {"mesh": {"rules": rules_text}, "model": {"arch": "transformer"}}}
  assert helps in aot.advice(report)
