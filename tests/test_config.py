"""The config schema: the preset, dotted overrides and errors that name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ultramedical.config import (
    Config,
    ConfigError,
    config_from_dict,
    dump_config,
    load_config,
    parse_overrides,
    read_preset,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-cpu.yaml"
MINIMAL = {"model": {"policy": "some/policy"}}


def test_tiny_preset_loads_with_its_values():
    config = load_config(TINY)
    assert isinstance(config, Config)
    assert config.name == "tiny"
    assert config.model.policy == "artifacts/tiny/policy"
    assert config.model.reward_model is None
    assert config.model.max_seq_len == 384
    assert config.trainer.zero_stage == 2
    assert config.trainer.truncation == "left"
    assert config.trainer.max_failures == 1
    assert config.sft.lr == pytest.approx(2.0e-3)
    raw = yaml.safe_load(TINY.read_text())
    assert isinstance(config.sft.epochs, float) and config.sft.epochs == float(raw["sft"]["epochs"])
    assert config.rm.center_coef == pytest.approx(0.01)
    assert [s.path for s in config.data.instructions] == ["artifacts/data/instructions.jsonl"]
    assert config.data.preferences is not None and config.data.preferences.split == "train"
    assert set(config.data.eval_benchmarks) == {"medqa", "medmcqa", "pubmedqa", "mmlu"}
    assert config.run_dir == Path("runs") / "tiny"
    # Defaults fill what the preset leaves out.
    assert config.dpo.loss_type == "sigmoid"
    assert config.serve.port == 8000


PAPER_PRESETS = [ROOT / "configs" / f"llama3-{name}.yaml" for name in ("8b", "70b", "8b-ultramix")]


def leaves(tree: object, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, value) for every scalar of a YAML tree; list items by index."""
    if isinstance(tree, dict):
        return [leaf for k, v in tree.items() for leaf in leaves(v, f"{prefix}{k}.")]
    if isinstance(tree, list):
        return [leaf for i, v in enumerate(tree) for leaf in leaves(v, f"{prefix}{i}.")]
    return [(prefix[:-1], tree)]


def lookup(config: Config, dotted: str) -> object:
    node: object = config
    for part in dotted.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            node = getattr(node, part)
    return node


@pytest.mark.parametrize("preset", PAPER_PRESETS, ids=lambda p: p.stem)
def test_paper_presets_load_with_every_key_they_set(preset):
    raw = read_preset(preset)
    config = load_config(preset)
    assert set(raw) <= set(Config.model_fields)
    written = leaves(raw)
    assert len(written) > 80  # every section of the preset, not a stub
    for key, value in written:  # each key lands in the config as written (none dropped or defaulted)
        assert lookup(config, key) == value, key
    # What the cluster run relies on: GPUs for every role, ZeRO-3, and a GPU per reward-service replica.
    assert config.trainer.use_gpu and config.trainer.zero_stage == 3
    assert config.generation.gpus_per_engine == config.generation.tensor_parallel_size
    assert config.reward.gpus_per_scorer >= 1 and config.serve.gpus_per_replica >= 1
    assert config_from_dict(yaml.safe_load(dump_config(config))) == config


@pytest.mark.parametrize("preset", PAPER_PRESETS, ids=lambda p: p.stem)
def test_a_paper_preset_that_gains_an_unknown_key_in_any_section_fails(preset, tmp_path):
    raw = read_preset(preset)
    sections = [None, *(name for name, value in raw.items() if isinstance(value, dict))]
    assert {"trainer", "generation", "reward", "online", "serve"} <= set(sections)
    for section in sections:
        changed = read_preset(preset)
        (changed if section is None else changed[section])["surplus_key"] = 1
        copy = tmp_path / f"{section}-{preset.name}"
        copy.write_text(yaml.safe_dump(changed))
        with pytest.raises(ConfigError) as info:
            load_config(copy)
        key = "surplus_key" if section is None else f"{section}.surplus_key"
        assert f"unknown key '{key}'" in str(info.value)


def test_exponent_floats_in_a_preset(tmp_path):
    preset = tmp_path / "exp.yaml"
    preset.write_text("model: {policy: p}\nsft: {lr: 1e-5}\ndpo: {lr: 5E-7, beta: 1e-1}\n")
    config = load_config(preset)
    assert config.sft.lr == 1e-5 and config.dpo.lr == 5e-7 and config.dpo.beta == 0.1


def test_dump_round_trips():
    config = load_config(TINY)
    again = config_from_dict(yaml.safe_load(dump_config(config)))
    assert again == config


def test_parse_overrides_reads_yaml_scalars():
    overrides = parse_overrides(
        [
            "--trainer.zero_stage",
            "3",
            "--sft.lr=1e-5",
            "--trainer.use_gpu",
            "true",
            "--model.reward_model=null",
            "--name",
            "run-7",
            "--online.min_margin=0.5",
            "--x.list",
            "[1, 2, three]",
            "--x.empty=",
            "--rm.lr",
            "1.5e3",
        ]
    )
    assert overrides == {
        "trainer.zero_stage": 3,
        "sft.lr": 1e-5,
        "trainer.use_gpu": True,
        "model.reward_model": None,
        "name": "run-7",
        "online.min_margin": 0.5,
        "x.list": [1, 2, "three"],
        "x.empty": "",
        "rm.lr": 1500.0,
    }
    assert type(overrides["trainer.zero_stage"]) is int
    assert type(overrides["sft.lr"]) is float
    assert overrides["trainer.use_gpu"] is True


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["trainer.zero_stage", "3"], "trainer.zero_stage"),
        (["--"], "'--'"),
        (["--trainer.zero_stage"], "--trainer.zero_stage"),
        (["--sft.lr", "[1, 2"], "--sft.lr"),
    ],
)
def test_parse_overrides_rejects_malformed(args, needle):
    with pytest.raises(ConfigError) as info:
        parse_overrides(args)
    assert needle in str(info.value)


def test_overrides_apply_with_types():
    config = load_config(
        TINY,
        [
            "--trainer.zero_stage",
            "3",
            "--sft.lr=1e-5",
            "--trainer.use_gpu",
            "true",
            "--trainer.offload_params=yes",
            "--model.reward_model",
            "null",
            "--dpo.loss_type",
            "ipo",
            "--sft.max_steps=7",
        ],
    )
    assert config.trainer.zero_stage == 3
    assert config.sft.lr == 1e-5
    assert config.trainer.use_gpu is True
    assert config.trainer.offload_params is True
    assert config.model.reward_model is None
    assert config.dpo.loss_type == "ipo"
    assert config.sft.max_steps == 7
    # Untouched fields keep the preset's values.
    assert config.trainer.micro_batch_size == 8


def test_override_lists_and_new_sections():
    config = config_from_dict(
        MINIMAL,
        [
            "--data.instructions",
            "[{path: a.jsonl, weight: 2}, {path: b.parquet}]",
            "--data.preferences.path",
            "p.jsonl",
        ],
    )
    assert [(s.path, s.weight) for s in config.data.instructions] == [("a.jsonl", 2.0), ("b.parquet", 1.0)]
    assert config.data.preferences is not None and config.data.preferences.path == "p.jsonl"


def test_overrides_as_dict_and_input_not_mutated():
    tree = {"model": {"policy": "p"}, "trainer": {"seed": 1}}
    config = config_from_dict(tree, {"trainer.seed": 5, "model.policy": "q"})
    assert config.trainer.seed == 5 and config.model.policy == "q"
    assert tree == {"model": {"policy": "p"}, "trainer": {"seed": 1}}


def test_unknown_top_level_key():
    with pytest.raises(ConfigError) as info:
        config_from_dict({**MINIMAL, "trainr": {}})
    message = str(info.value)
    assert "unknown key 'trainr'" in message
    assert "did you mean 'trainer'" in message


def test_unknown_nested_key_from_override():
    with pytest.raises(ConfigError) as info:
        load_config(TINY, ["--trainer.lrr", "1"])
    message = str(info.value)
    assert "unknown key 'trainer.lrr'" in message
    assert str(TINY) in message


def test_unknown_nested_key_suggests_close_match():
    with pytest.raises(ConfigError) as info:
        load_config(TINY, ["--trainer.zero_stag", "3"])
    assert "unknown key 'trainer.zero_stag' (did you mean 'zero_stage'?)" in str(info.value)


def test_typo_inside_a_preset_file(tmp_path):
    text = TINY.read_text(encoding="utf-8").replace("  micro_batch_size: 8", "  micro_bach_size: 8")
    assert "micro_bach_size" in text
    preset = tmp_path / "typo.yaml"
    preset.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    message = str(info.value)
    assert "unknown key 'trainer.micro_bach_size'" in message
    assert str(preset) in message


def test_typo_deep_inside_a_list(tmp_path):
    preset = tmp_path / "deep.yaml"
    preset.write_text("model: {policy: p}\ndata:\n  instructions:\n    - {path: a.jsonl, wieght: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    assert "unknown key 'data.instructions.0.wieght'" in str(info.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (["--trainer.zero_stage", "4"], "trainer.zero_stage"),
        (["--trainer.zero_stage", "two"], "trainer.zero_stage"),
        (["--sft.lr", "0"], "sft.lr"),
        (["--sft.lr", "-1e-5"], "sft.lr"),
        (["--rm.lr", "0"], "rm.lr"),
        (["--dpo.lr", "-1"], "dpo.lr"),
        (["--kto.lr", "0.0"], "kto.lr"),
        (["--dpo.loss_type", "hinge"], "dpo.loss_type"),
        (["--trainer.truncation", "middle"], "trainer.truncation"),
        (["--dpo.label_smoothing", "0.5"], "dpo.label_smoothing"),
        (["--generation.top_p", "1.5"], "generation.top_p"),
        (["--serve.port", "70000"], "serve.port"),
        (["--trainer.use_gpu", "[1]"], "trainer.use_gpu"),
        (["--online.completions_per_prompt", "1"], "online.completions_per_prompt"),
        (["--data.on_invalid", "ignore"], "data.on_invalid"),
        (["--eval.sampled_max_items", "0"], "eval.sampled_max_items"),
        (["--model.max_seq_len", "8"], "model.max_seq_len"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(TINY, override)
    assert f"'{key}'" in str(info.value)


def test_several_problems_are_all_reported():
    with pytest.raises(ConfigError) as info:
        config_from_dict(MINIMAL, ["--trainer.zero_stage", "9", "--sft.lr", "-1", "--eval.bogus", "1"])
    message = str(info.value)
    for key in ("'trainer.zero_stage'", "'sft.lr'", "'eval.bogus'"):
        assert key in message


def test_missing_required_key():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"trainer": {"zero_stage": 1}})
    assert "missing key 'model'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config_from_dict({"model": {"dtype": "float32"}})
    assert "missing key 'model.policy'" in str(info.value)


def test_override_through_a_scalar_is_an_error():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"model": {"policy": "p"}, "name": "x"}, ["--name.first", "1"])
    assert "'name' is not a section" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "not found" in str(info.value) and "nope.yaml" in str(info.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_invalid_yaml(tmp_path):
    preset = tmp_path / "broken.yaml"
    preset.write_text("model: {policy: p\ntrainer: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    assert "not valid YAML" in str(info.value) and "broken.yaml" in str(info.value)


def test_not_utf8(tmp_path):
    preset = tmp_path / "latin1.yaml"
    preset.write_bytes(b"model: {policy: caf\xe9}\n")
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    assert "latin1.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int")]
)
def test_top_level_must_be_a_mapping(tmp_path, text, kind):
    preset = tmp_path / "flat.yaml"
    preset.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    assert "must be a mapping" in str(info.value) and kind in str(info.value)


def test_empty_file_reports_the_missing_model(tmp_path):
    preset = tmp_path / "empty.yaml"
    preset.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(preset)
    assert "missing key 'model'" in str(info.value)


def test_config_from_dict_rejects_a_non_mapping():
    with pytest.raises(ConfigError) as info:
        config_from_dict(["model"], ["--model.policy", "p"])  # type: ignore[arg-type]
    assert "must be a mapping" in str(info.value)


def test_offload_params_needs_zero3():
    with pytest.raises(ConfigError) as info:
        load_config(TINY, ["--trainer.offload_params", "true"])
    assert "trainer.offload_params needs trainer.zero_stage 3" in str(info.value)
    config = load_config(TINY, ["--trainer.offload_params", "true", "--trainer.zero_stage", "3"])
    assert config.trainer.offload_params and config.trainer.zero_stage == 3


def test_assignment_is_validated():
    config = load_config(TINY)
    with pytest.raises(ValueError):
        config.trainer.zero_stage = 5
    assert config.trainer.zero_stage == 2


def test_huge_integer_is_a_config_error(tmp_path):
    preset = tmp_path / "huge.yaml"
    preset.write_text("model: {policy: p}\ntrainer: {seed: " + "9" * 5000 + "}\n")
    with pytest.raises(ConfigError):
        load_config(preset)
    with pytest.raises(ConfigError) as info:
        parse_overrides(["--trainer.seed", "9" * 5000])
    assert "--trainer.seed" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config_from_dict({**MINIMAL, "name": 10**5000})
    assert "'name'" in str(info.value)


def test_a_preset_states_only_its_differences_from_its_base(tmp_path):
    seventy, eight = (read_preset(PAPER_PRESETS[0].parent / f"llama3-{size}.yaml") for size in ("70b", "8b"))
    own = yaml.safe_load((PAPER_PRESETS[0].parent / "llama3-70b.yaml").read_text())
    assert own["base"] == "llama3-8b.yaml" and "base" not in seventy
    assert seventy["trainer"]["num_workers"] == 32 and seventy["trainer"]["zero_stage"] == 3  # own; base's
    assert seventy["online"] == eight["online"] and seventy["data"] == eight["data"]
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="cannot read its base preset"):
        load_config(tmp_path / "c.yaml")


def test_the_ultramix_preset_is_the_8b_one_with_general_instructions_mixed_in():
    eight = load_config(ROOT / "configs" / "llama3-8b.yaml").model_dump()
    ultramix = load_config(ROOT / "configs" / "llama3-8b-ultramix.yaml").model_dump()
    own = yaml.safe_load((ROOT / "configs" / "llama3-8b-ultramix.yaml").read_text())
    assert own["base"] == "llama3-8b.yaml" and set(own) == {"base", "name", "data"}
    assert ultramix["name"] == "llama3-8b-ultramix" != eight["name"]  # its own run directory
    medical, general = ultramix["data"]["instructions"]
    assert medical == eight["data"]["instructions"][0]  # every UltraMedical record, as in the 8B run
    assert general["path"] == "HuggingFaceH4/ultrachat_200k" and general["split"] == "train_sft"
    assert 0 < general["weight"] < medical["weight"]
    ultramix["name"], ultramix["data"]["instructions"] = eight["name"], eight["data"]["instructions"]
    assert ultramix == eight
