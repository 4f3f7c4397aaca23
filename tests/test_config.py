"""apallm.config: YAML run configs into nested, validated dataclasses; every shipped run config loads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from apallm.config import ConfigBase, ConfigError, config_to_dict, load_config, parse_override

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Optim:
    lr: float = 1e-3
    kind: Literal["adam", "sgd"] = "adam"
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError("lr", f"must be positive, got {self.lr}")


@dataclass
class Run(ConfigBase):
    KIND = "test"
    RENAMED = {"dev_manifest": "eval_manifest"}

    train_manifest: Path
    eval_manifest: Path | None = None
    steps: int = 10
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # free-form, passed on as it is
    resume: bool | str = False


def write(folder: Path, text: str) -> Path:
    path = folder / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        Run.from_yaml(path, overrides)
    return str(info.value)


def test_a_valid_config_builds_its_nested_sections_and_takes_an_int_for_a_float(tmp_path):
    cfg = Run.from_yaml(write(tmp_path, "train_manifest: /data/train.jsonl\nsteps: 3\noptim: {lr: 1, kind: sgd}\n"
                                        "tags: [a, b]\nweights: {label: 1}\ntraining: {warmup_steps: 0.03}\n"))
    assert cfg.train_manifest == Path("/data/train.jsonl") and cfg.steps == 3
    assert cfg.optim == Optim(lr=1.0, kind="sgd") and isinstance(cfg.optim.lr, float)
    assert cfg.tags == ["a", "b"] and cfg.weights == {"label": 1.0} and cfg.training == {"warmup_steps": 0.03}
    assert cfg.optim.betas == (0.9, 0.999)


def test_unknown_keys_are_named_with_the_closest_valid_key(tmp_path):
    path = write(tmp_path, "train_manifest: x\nstep: 3\n")
    assert error(path) == f"{path}: step: unknown test config key; did you mean steps?"
    message = error(write(tmp_path, "train_manifest: x\noptim: {lr: 0.1, kidn: sgd}\n"))
    assert "optim.kidn: unknown test config key; did you mean optim.kind?" in message
    message = error(write(tmp_path, "train_manifest: x\nzzz: 1\n"))
    assert "zzz: unknown test config key; valid keys: eval_manifest, optim, resume, steps, tags," in message


def test_a_value_outside_a_literal_is_refused_with_the_choices(tmp_path):
    message = error(write(tmp_path, "train_manifest: x\noptim: {kind: adamw}\n"))
    assert message.endswith("optim.kind: 'adamw' is not one of: 'adam', 'sgd'")


@pytest.mark.parametrize("yaml_text,needle", [
    ("steps: ten", "steps: expected an integer, got 'ten'"),
    ("steps: 2.5", "steps: expected an integer, got 2.5"),
    ("steps: true", "steps: expected an integer, got true"),
    ("optim: {lr: fast}", "optim.lr: expected a number, got 'fast'"),
    ("optim: {betas: [0.9]}", "optim.betas: expected a list of 2 values (a number, a number), got [0.9]"),
    ("optim: 3", "optim: expected a mapping of Optim keys, got 3"),
    ("tags: [a, 2]", "tags[1]: expected a string, got 2"),
    ("weights: {label: high}", "weights.label: expected a number, got 'high'"),
    ("training: [1, 2]", "training: expected a mapping, got [1, 2]"),
    ("resume: 3", "resume: expected true or false or a string, got 3"),
    ("eval_manifest: 3", "eval_manifest: expected a path, got 3"),
])
def test_a_value_of_the_wrong_type_is_refused_with_its_key(tmp_path, yaml_text, needle):
    assert error(write(tmp_path, f"train_manifest: x\n{yaml_text}\n")).endswith(needle)


def test_missing_renamed_and_post_init_errors_name_their_key(tmp_path):
    assert error(write(tmp_path, "steps: 3\n")).endswith("train_manifest: missing: the test config needs it")
    assert error(write(tmp_path, "train_manifest: x\ndev_manifest: y\n")).endswith(
        "dev_manifest: this key was renamed to eval_manifest")
    assert error(write(tmp_path, "train_manifest: x\noptim: {lr: -1}\n")).endswith(
        "optim.lr: must be positive, got -1.0")
    assert error(write(tmp_path, "- a\n- b\n")).endswith("a config is a YAML mapping of keys to values, not list")
    assert "not valid YAML" in error(write(tmp_path, "a: [1\n"))


def test_relative_paths_are_read_beside_the_config_only_where_they_exist_there_alone(tmp_path, monkeypatch):
    configs, work = tmp_path / "configs", tmp_path / "work"
    configs.mkdir(), work.mkdir()
    (configs / "beside.jsonl").write_text("")
    (configs / "both.jsonl").write_text("")
    (work / "both.jsonl").write_text("")
    monkeypatch.chdir(work)
    cfg = Run.from_yaml(write(configs, "train_manifest: beside.jsonl\neval_manifest: both.jsonl\n"))
    assert cfg.train_manifest == configs.resolve() / "beside.jsonl"
    assert cfg.eval_manifest == Path("both.jsonl")  # the working directory's, as written
    cfg = Run.from_yaml(write(configs, "train_manifest: runs/new.jsonl\n"))
    assert cfg.train_manifest == Path("runs/new.jsonl")  # exists nowhere yet: an output, from the working dir
    assert Run.from_dict({"train_manifest": "beside.jsonl"}).train_manifest == Path("beside.jsonl")


def test_overrides_reach_nested_and_free_form_keys(tmp_path):
    path = write(tmp_path, "train_manifest: x\ntraining: {learning_rate: 1.0e-2, logging_steps: 4}\n")
    cfg = Run.from_yaml(path, ["optim.kind=sgd", "training.learning_rate=1e-4", "training.max_steps=2",
                               "tags=[x, y]", "steps=5", "eval_manifest="])
    assert cfg.optim.kind == "sgd" and cfg.steps == 5 and cfg.tags == ["x", "y"] and cfg.eval_manifest is None
    assert cfg.training == {"learning_rate": 1e-4, "logging_steps": 4, "max_steps": 2}
    assert isinstance(cfg.training["learning_rate"], float)  # YAML 1.2's reading of 1e-4, not a string
    mapped = Run.from_yaml(path, {"training.max_steps": 3, "optim": {"lr": 0.5}})
    assert mapped.training["max_steps"] == 3 and mapped.optim.lr == 0.5
    assert error(path, ["optim.kidn=sgd"]).endswith("optim.kidn: unknown test config key; did you mean optim.kind?")
    assert error(path, ["steps.x=1"]).endswith("steps: expected an integer, got a mapping")
    assert error(write(tmp_path, "train_manifest: x\nsteps: 10\n"), ["steps.x=1"]).endswith(
        "steps: holds 10, not a mapping: cannot set steps.x")
    with pytest.raises(ConfigError, match="an override is KEY=VALUE"):
        Run.from_yaml(path, ["steps"])


def test_parse_override_reads_the_value_as_yaml():
    assert parse_override("a.b=c") == ("a.b", "c")
    assert parse_override("training.learning_rate=1e-4") == ("training.learning_rate", 1e-4)
    assert parse_override("x=[1, 2.5, z]") == ("x", [1, 2.5, "z"])
    assert parse_override("x=true") == ("x", True)
    assert parse_override("x=") == ("x", None)
    assert parse_override("path=a=b") == ("path", "a=b")
    for bad in ("novalue", "=3", "a..b=1", "a.=1"):
        with pytest.raises(ConfigError, match="an override is KEY=VALUE"):
            parse_override(bad)


def test_the_error_is_a_value_error_and_a_config_records_as_json(tmp_path):
    assert issubclass(ConfigError, ValueError)
    cfg = load_config(Run, write(tmp_path, "train_manifest: /x\n"))
    record = config_to_dict(cfg)
    assert json.loads(json.dumps(record)) == record
    assert record["train_manifest"] == "/x" and record["optim"]["betas"] == [0.9, 0.999]
    assert Run.from_dict(record) == cfg  # what a run records reads back


# ------------------------------------------------------------------------------------------------ shipped configs
def _recipes() -> dict:
    from apallm.cm.train import CMTrainConfig
    from apallm.training.grpo import GRPOConfig
    from apallm.training.sft import SFTConfig

    return {"sft": SFTConfig, "grpo": GRPOConfig, "cm": CMTrainConfig}


#: YAML files under configs/ that are another tool's configs, not run configs of a recipe
NOT_RUN_CONFIGS = {"accelerate"}


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "configs").rglob("*.yaml")
                                        if p.relative_to(REPO / "configs").parts[0] not in NOT_RUN_CONFIGS),
                         ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_shipped_run_config_loads_through_its_config_class(path):
    recipes = _recipes()
    folder = path.relative_to(REPO / "configs").parts[0]
    assert folder in recipes, f"configs/{folder}/ holds run configs of no known recipe"
    cfg = recipes[folder].from_yaml(path)
    assert json.loads(json.dumps(cfg.to_dict()))["output_dir"]


@pytest.mark.parametrize("recipe, config, wrong, named", [
    ("sft", "configs/sft/tiny-omni-zero2.yaml", "peft.rr=3", "peft.rr: unknown SFT config key; did you mean peft.r?"),
    ("grpo", "configs/grpo/tiny-omni-zero2.yaml", "num_generations=1", "num_generations"),
    ("cm", "configs/cm/tiny-aasist-toy.yaml", "lr_schedule=linear", "lr_schedule"),
])
def test_every_train_command_takes_set_and_names_the_key_it_refuses(recipe, config, wrong, named, capsys):
    from apallm.commands import main

    root = Path(__file__).resolve().parents[1]
    assert main(["train", recipe, "--config", str(root / config), "--set", wrong]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"apallm train {recipe}: ") and named in err
