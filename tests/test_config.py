"""params.yaml loading: profiles merge, types are checked, unknown keys are rejected by name."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from gramlib.core import config, formats

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_profile_and_variant_loads(profile):
    params = config.load_params(ROOT / "params.yaml", profile)
    for name in config.SECTIONS:
        config.section(params, name)
    for slug in params["variants"]:
        variant, model, train = config.resolve_variant(params, slug)
        assert variant.format in formats.FORMATS


def test_profile_overrides_are_deep_merged():
    smoke = config.load_params(ROOT / "params.yaml", "smoke")
    cpu = config.load_params(ROOT / "params.yaml", "cpu")
    assert config.section(smoke, "model").embed_dim < config.section(cpu, "model").embed_dim
    # a key the profile does not touch keeps the shared value
    assert config.section(smoke, "model").mask_ratio == config.section(cpu, "model").mask_ratio
    assert config.section(smoke, "sources").clip_s == config.section(cpu, "sources").clip_s


def test_paper_profile_follows_the_recipe():
    paper = config.load_params(ROOT / "params.yaml", "paper")
    model, train = config.section(paper, "model"), config.section(paper, "train")
    assert (model.embed_dim, model.depth, model.heads) == (768, 12, 12)
    assert (train.steps_main, train.batch_clips, train.n_crops, train.lr, train.warmup_steps) == (
        500_000, 96, 16, 2e-4, 10_000)
    assert model.mask_ratio == 0.8 and train.betas == (0.9, 0.95) and train.weight_decay == 0.01


def test_unknown_section_key_is_named(tmp_path):
    data = base()
    data["model"]["embed_dimm"] = 3
    with pytest.raises(config.ConfigError, match=r"embed_dimm.*section 'model'"):
        config.load_params(write(tmp_path, data))


def test_unknown_key_inside_a_profile_is_named(tmp_path):
    data = base()
    data["profiles"]["smoke"]["train"]["stepz"] = 3
    with pytest.raises(config.ConfigError, match=r"stepz.*'train'"):
        config.load_params(write(tmp_path, data), "smoke")


def test_unknown_top_level_key_and_profile(tmp_path):
    data = base()
    data["modle"] = {}
    with pytest.raises(config.ConfigError, match="modle"):
        config.load_params(write(tmp_path, data))
    with pytest.raises(config.ConfigError, match="'gpu'.*accepted"):
        config.load_params(ROOT / "params.yaml", "gpu")


def test_wrong_types_are_rejected(tmp_path):
    data = base()
    data["train"]["steps_main"] = "many"
    with pytest.raises(config.ConfigError, match=r"train.steps_main must be an integer"):
        config.load_params(write(tmp_path, data))
    data = base()
    data["model"]["encoder"] = "lstm"
    with pytest.raises(config.ConfigError, match=r"model.encoder = 'lstm'.*transformer"):
        config.load_params(write(tmp_path, data))
    data = base()
    data["rooms"]["rt60_s"] = [0.2]
    with pytest.raises(config.ConfigError, match=r"rooms.rt60_s must have 2 entries"):
        config.load_params(write(tmp_path, data))


def test_variant_overrides_and_errors(tmp_path):
    params = config.load_params(ROOT / "params.yaml")
    _, model, train = config.resolve_variant(params, "mask-060")
    assert model.mask_ratio == 0.6 and train.n_crops == config.section(params, "train").n_crops
    data = base()
    data["variants"]["mask-060"]["set"]["model"]["mask_ratioo"] = 0.6
    with pytest.raises(config.ConfigError, match="mask_ratioo"):
        config.load_params(write(tmp_path, data))
    with pytest.raises(config.ConfigError, match="unknown variant 'nope'"):
        config.resolve_variant(params, "nope")


def test_frozen():
    cfg = config.section(config.load_params(ROOT / "params.yaml"), "train")
    with pytest.raises(dataclasses.FrozenInstanceError, match="lr"):
        cfg.lr = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------- params.yaml is the only truth
def test_every_dataclass_default_equals_params_yaml():
    """Code that builds a section without params (notebook helpers, tests) gets exactly params.yaml's values."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, cls in config.SECTIONS.items():
        listed, defaults = raw.get(name) or {}, cls()
        for f in dataclasses.fields(cls):
            assert f.name in listed, f"params.yaml does not list {name}.{f.name} (its default: {getattr(defaults, f.name)!r})"
            value = getattr(config.build(cls, {f.name: listed[f.name]}, name), f.name)
            assert value == getattr(defaults, f.name), \
                f"{name}.{f.name}: params.yaml {value!r}, dataclass default {getattr(defaults, f.name)!r}"


def test_the_demo_is_params_yaml_demo_profile():
    from gramlib.interactive import demo

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert raw["profiles"]["demo"] == demo.DEMO
    built = config.load_params(ROOT / "params.yaml", profile="demo")
    assert config.section(built, "model").embed_dim == demo.DEMO["model"]["embed_dim"]


@pytest.mark.parametrize("section,key,value,accepted", [
    ("train", "lr", -1.0, "a number > 0"), ("model", "mask_ratio", 1.0, r"a number in \(0, 1\)"),
    ("train", "snr_db", [40.0, 5.0], r"\[low, high\] with low <= high"), ("rooms", "rt60_s", [0.0, 0.5], "low > 0"),
    ("sources", "task_clips", {"words": -1}, "a mapping of integers >= 0"), ("evaluate", "bootstrap", -5, ">= 0"),
    ("seld", "synth_elevation_deg", [-100, 40], r"within \[-90, 90\]")])
def test_an_out_of_range_value_names_its_key_and_the_range(tmp_path, section, key, value, accepted):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw[section] = {**raw[section], key: value}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match=rf"{section}\.{key} = .* is out of range; accepted: .*{accepted}"):
        config.load_params(path)


def test_a_variant_override_out_of_range_names_the_variant(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["variants"]["mamba"]["set"] = {"train": {"lambda_clean": 1.5}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match=r"variants\.mamba\.set\.train\.lambda_clean = 1\.5 is out of range"):
        config.load_params(path)


def test_reads_are_noted_for_the_stage_dependency_check(tmp_path, monkeypatch):
    log = tmp_path / "read.log"
    monkeypatch.setenv(config.READ_LOG_ENV, str(log))
    monkeypatch.setenv("GRAM_STAGE", "evaluate@mamba")
    params = config.load_params(ROOT / "params.yaml")
    assert not log.exists()  # loading and checking every section is not a read
    config.section(params, "evaluate")
    params["seed"]
    config.resolve_variant(params, "mamba")
    assert log.read_text().split("\n")[:-1] == [f"evaluate@mamba\t{k}" for k in
                                                 ("evaluate", "seed", "variants.mamba", "model", "train")]
