import pytest
import yaml

from masklab.config import build_config, load_config, save_config
from masklab.errors import UserError


def test_defaults_make_a_complete_config():
    cfg = build_config()
    assert cfg.masking.rate == 0.345 and cfg.masking.mask_token_fraction == 0.8  # mini's measured masked-LM recipe
    assert cfg.data.corpus == "builtin:sotu"
    bare = build_config(preset_training=False)  # what evaluating a checkpoint without a run's config.yaml uses
    assert (bare.masking.rate, bare.train.lr, bare.train.warmup_fraction) == (0.15, 0.0, 0.06)


def test_dotted_overrides_are_typed():
    cfg = build_config({}, ["train.lr=3e-4", "train.max_steps=7", "tokenizer.lowercase=false", "masking.mode=static"])
    assert cfg.train.lr == pytest.approx(3e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.max_steps == 7 and cfg.tokenizer.lowercase is False and cfg.masking.mode == "static"


@pytest.mark.parametrize(
    "raw, overrides, needle",
    [
        ({"train": {"lrr": 1}}, [], "valid keys in [train]"),
        ({"trian": {}}, [], "valid sections"),
        ({}, ["masking.rate=1.5"], "masking.rate must be strictly between 0 and 1"),
        ({}, ["masking.rate=0"], "masking.rate"),
        ({}, ["masking.mask_token_fraction=0.8", "masking.random_token_fraction=0.3"], "exceeds 1"),
        ({}, ["train.max_steps=ten"], "whole number"),
        ({}, ["tokenizer.model=bytepair"], "wordpiece, bpe, unigram"),
        ({}, ["train.lr"], "section.key=value"),
    ],
)
def test_bad_config_values_say_what_to_fix(raw, overrides, needle):
    with pytest.raises(UserError) as info:
        build_config(raw, overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_lists_valid_ones():
    with pytest.raises(UserError) as info:
        build_config({}, ["train.learning_rate=1e-3"])
    assert "lr" in str(info.value) and "batch_size" in str(info.value)


def test_save_and_load_round_trip(tmp_path):
    cfg = build_config({}, ["train.lr=1e-3", "data.corpus=/x/y.txt"])
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["train"]["lr"] == 1e-3


def test_the_tiny_preset_brings_its_measured_schedule_and_any_setting_wins(tmp_path):
    plain = build_config({}, ["model.preset=mini"]).train
    assert (plain.schedule, plain.seq_warmup_fraction) == ("linear", 0.0)  # the other presets keep the plain recipe
    tiny = build_config({}, ["model.preset=tiny"])
    assert (tiny.train.schedule, tiny.train.seq_warmup_fraction) == ("wsd", 0.3)
    # a value the user gives wins, key by key, whether it comes from --set or from the YAML file
    mixed = build_config({"train": {"schedule": "cosine"}}, ["model.preset=tiny"]).train
    assert (mixed.schedule, mixed.seq_warmup_fraction) == ("cosine", 0.3)
    assert build_config({}, ["model.preset=tiny", "train.seq_warmup_fraction=0"]).train.seq_warmup_fraction == 0.0
    # the warm-up only where it can cut the blocks into 32 x 2^k-token pieces
    for extra in (["data.seq_length=96"], ["data.seq_length=32"]):
        cfg = build_config({}, ["model.preset=tiny", *extra]).train
        assert (cfg.schedule, cfg.seq_warmup_fraction) == ("wsd", 0.0), extra
    # measured for the masked LM only: the causal LM the word-order target times keeps its plain recipe
    clm = build_config({}, ["model.preset=tiny", "train.objective=clm"]).train
    assert (clm.schedule, clm.seq_warmup_fraction) == ("linear", 0.0)
    assert build_config({}, ["model.preset=tiny", "data.seq_length=256"]).train.seq_warmup_fraction == 0.3
    # a run continuing a checkpoint has no preset shape, so it takes none of the preset's values
    assert build_config({}, ["model.preset=tiny", "model.init=/a/run"]).train.schedule == "linear"
    # the saved config holds the resolved values: a run reloaded (to resume or evaluate) trains the same way
    save_config(tiny, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == tiny
    explicit = yaml.safe_load((tmp_path / "c.yaml").read_text())["train"]
    assert (explicit["schedule"], explicit["seq_warmup_fraction"]) == ("wsd", 0.3)


def test_the_mini_preset_brings_the_q7_search_point_and_any_setting_wins(tmp_path):
    def recipe(*sets, raw=None):
        cfg = build_config(raw or {}, list(sets))
        return cfg.masking.rate, cfg.train.lr, cfg.train.warmup_fraction

    assert recipe() == recipe("model.preset=mini") == (0.345, 1.44e-3, 0.127)
    assert recipe("model.architecture=modernbert") == (0.345, 1.44e-3, 0.127)  # what auto means for the masked LM
    # key by key, from --set or the YAML file, across sections: the earlier recipe is three settings away
    assert recipe("masking.rate=0.15") == (0.15, 1.44e-3, 0.127)
    assert recipe(raw={"train": {"lr": 0.0}}) == (0.345, 0.0, 0.127)
    assert recipe("masking.rate=0.15", "train.lr=0", "train.warmup_fraction=0.06") == (0.15, 0.0, 0.06)
    # under a rate schedule masking.rate is the schedule's end, under diffusion the validation rate: neither moves
    assert recipe("masking.schedule=linear", "masking.rate_start=0.3")[0] == 0.15
    assert recipe("masking.diffusion.schedule=linear") == (0.15, 1.44e-3, 0.127)
    # measured on ModernBERT from scratch: BERT keeps its own lr (train.lr 0 = 5e-4), a checkpoint continues as set
    assert recipe("model.architecture=bert") == (0.15, 0.0, 0.06)
    assert recipe("model.init=/a/run") == (0.15, 0.0, 0.06)
    assert build_config({}, ["model.preset=tiny", "model.architecture=bert"]).train.schedule == "linear"
    # the other objectives and presets were not measured; the causal LM may not even carry masking settings
    for objective in ("clm", "seq2seq", "hybrid", "electra"):
        assert recipe(f"train.objective={objective}") == (0.15, 0.0, 0.06), objective
    assert recipe("model.preset=small") == (0.15, 0.0, 0.06)
    # a saved run reloads to the values it trained with, even once a default moves again
    cfg = build_config()
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg == load_config(tmp_path / "c.yaml", preset_training=False)


def test_resume_with_a_config_file_keeps_what_the_run_trained_with(tmp_path):
    from masklab.pretrain.run import resolve_run_config

    # a mini run made before its preset's defaults moved: 15% masking, lr 0, a span length of its own
    out = tmp_path / "run"
    out.mkdir()
    earlier = build_config({}, ["masking.span.max_words=4"], preset_training=False)
    save_config(earlier, out / "config.yaml")
    own = tmp_path / "my.yaml"
    own.write_text("train:\n  max_steps: 50\nmasking:\n  span:\n    p: 0.3\n", encoding="utf-8")
    cfg = resolve_run_config(str(own), ["train.batch_size=16"], out, resume=True)
    assert (cfg.masking.rate, cfg.train.lr, cfg.train.warmup_fraction) == (0.15, 0.0, 0.06)  # as it trained
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.masking.span.p) == (50, 16, 0.3)  # the file and --set win
    assert cfg.masking.span.max_words == 4  # a nested setting keeps the keys the file leaves out
    assert resolve_run_config(str(own), [], out, resume=False).masking.rate == 0.345  # a fresh run: today's default


def test_bad_yaml_is_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(UserError) as info:
        load_config(p)
    assert "not valid YAML" in str(info.value)


def test_nested_settings_take_three_part_keys():
    cfg = build_config({"masking": {"span": {"max_words": 5}}}, ["masking.strategy=span", "masking.span.p=0.3"])
    assert cfg.masking.span.p == 0.3 and cfg.masking.span.max_words == 5
    with pytest.raises(UserError, match="valid keys in \\[masking.span\\]"):
        build_config({}, ["masking.span.q=1"])


@pytest.mark.parametrize(
    "shape, message",
    [
        ({"hidden_size": 180, "num_heads": 4}, r"odd head size \(45\)"),  # q7-recipe's first deep-narrow point
        ({"hidden_size": 100, "num_heads": 3}, "not divisible"),
    ],
)
def test_a_model_shape_the_architecture_cannot_build_is_one_line(shape, message):
    """Rotary position embeddings rotate pairs of dimensions: an odd head size would fail deep in the
    first forward pass (a tensor size mismatch), so it is refused before anything is built."""
    from masklab.models.presets import preset_shape

    cfg = build_config(overrides=[f"model.{k}={v}" for k, v in shape.items()])
    with pytest.raises(UserError, match=message) as caught:
        preset_shape(cfg.model)
    assert "\n" not in str(caught.value)
    even = build_config(overrides=["model.hidden_size=184", "model.num_heads=4"])
    assert preset_shape(even.model)[1:3] == (184, 4)


def test_an_odd_head_size_is_refused_only_where_positions_rotate(tiny_tokenizer):
    """BERT's absolute positions have no pairs to rotate: a head size of 45 builds and runs a forward pass,
    where modernbert (rotary) refuses it in one line."""
    import torch

    from masklab.models.build import build_model

    odd = ["model.hidden_size=180", "model.num_heads=4", "model.num_layers=1", "model.intermediate_size=64"]
    bert = build_model(build_config(overrides=[*odd, "model.architecture=bert"]).model, tiny_tokenizer, 32)
    ids = torch.randint(5, len(tiny_tokenizer), (2, 16))
    assert bert(input_ids=ids).logits.shape == (2, 16, bert.config.vocab_size)
    with pytest.raises(UserError, match=r"odd head size \(45\)"):
        build_model(build_config(overrides=odd).model, tiny_tokenizer, 32)
