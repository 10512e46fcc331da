"""run.json and plan.json as records: read and written back key for key, bad files one line."""

import json

import pytest

from scaling import rundir, storage
from scaling.errors import InputError
from scaling.records import PlanRecord, RunRecord


def test_a_run_record_round_trips_old_new_and_unknown_keys(tmp_path):
  old = {"params": 10, "flops_per_token": {"chinchilla": 60.0}, "added_later": [1, 2]}
  run = rundir.RunDir(tmp_path / "old")
  storage.write_json(run.run_file, old)
  record = run.record()
  assert record.params == 10 and record.train_steps is None and record.get("added_later") == [1, 2]
  run.write_run(record)
  assert storage.read_json(run.run_file) == old

  made = RunRecord(config={"seed": 0}, params=3, git_commit=None, history=({"step": 2},))
  assert made.to_json() == {"config": {"seed": 0}, "params": 3, "git_commit": None,
                            "history": [{"step": 2}]}
  assert RunRecord.from_json(json.loads(json.dumps(made.to_json())), "x") == made


@pytest.mark.parametrize("text,named", [
    ("[1]", "expected a JSON object"),
    ('{"params": "many"}', "params is 'many', expected a number"),
    ('{"config": [1]}', "config is '[1]', expected an object"),
    ('{"conf', "unreadable"),
])
def test_a_malformed_run_json_is_one_line_naming_the_file(tmp_path, text, named):
  run = rundir.RunDir(tmp_path)
  storage.write_text(run.run_file, text)
  with pytest.raises(InputError) as error:
    run.record()
  assert str(error.value).startswith(f"{run.run_file}: ") and named in str(error.value)
  assert "\n" not in str(error.value)


def test_needs_names_the_missing_key():
  with pytest.raises(InputError, match="run.json: missing 'train_steps'"):
    RunRecord.from_json({"params": 1}, "run.json").needs("params", "train_steps")


def test_a_plan_record_checks_its_run_entries(tmp_path):
  entry = {"name": "a", "workdir": "runs/a", "config": {}, "steps": 4, "budget": 1e15}
  plan = {"kind": "ladder", "recipe": {"base": {"name": "chinchilla"}}, "runs": [entry],
          "flops_ratio": 1.0}
  sweep = rundir.SweepDir(tmp_path)
  storage.write_json(sweep.plan_file, plan)
  record = sweep.read_plan()
  assert record.entries() == (entry,) and record.entries("trunks") == ()
  assert record.recipe_name == "chinchilla" and record.to_json() == plan
  with pytest.raises(InputError, match=r"plan.json: runs\[0\] has no 'steps'"):
    PlanRecord.from_json({"runs": [{**entry, "steps": None}]}, "plan.json")
