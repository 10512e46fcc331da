"""scaling.compile.search: candidates compiled by libtpu, those that fit ranked, ready as overrides."""

import os

from scaling.compile import cli, search, topology

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--config.model.dtype=bfloat16", "--config.model.d_model=128", "--config.model.n_heads=1",
        "--config.model.n_layers=1", "--config.batch_size=8", "--config.mesh.data=1",
        "--config.mesh.fsdp=-1"]


def test_search_ranks_what_fits_by_the_step_bound_and_prints_ready_overrides():
  cfg, resolved = cli.load_train_config(os.path.join(REPO, "configs/tiny.py"), TINY)
  tried_rows = []
  result = search.search(cfg, resolved, topology.parse("v5litepod-4"), remats=("none", "offload"),
                         microbatches=(1, 3), log=tried_rows.append)
  assert tried_rows == result["tried"]
  # 8 rows over 4 devices: 3 microbatches cannot split; the tiny model fits at once; this libtpu
  # compiles offloading to host memory.
  assert [(r["remat"], r["microbatches"], r["error"]) for r in result["tried"]] == [
      ("none", 1, None), ("offload", 1, None)]
  fits = result["fits"]
  assert fits and all(r["fits"] and r["step_seconds"] > 0 for r in fits)
  assert [r["step_seconds"] for r in fits] == sorted(r["step_seconds"] for r in fits)
  text = search.table(result, "v5litepod-4")
  best = [line for line in text.splitlines() if line.startswith("*")]
  assert len(best) == 1 and fits[0]["overrides"] in best[0]
  # The printed overrides are valid config for the same command.
  overrides = fits[-1]["overrides"].split()
  again, _ = cli.load_train_config(os.path.join(REPO, "configs/tiny.py"), [*TINY, *overrides])
  assert (again.microbatches, again.model.remat) == (fits[-1]["microbatches"], fits[-1]["remat"])
