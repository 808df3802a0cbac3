"""The search space: parsing, validation, variants as implicit settings (no Ray)."""
import json

import pytest

from yolor_ray.implicit import ImplicitSpec
from yolor_ray.tune.space import SpaceError, effective
from yolor_ray.tune.space_parse import DEFAULT_SPACE, load_space_file, parse_space
from yolor_ray.tune.variant import implicit_of, label_of


def test_default_space_parses_and_every_grid_variant_is_a_valid_implicit_spec():
    space = parse_space(DEFAULT_SPACE)
    grid = space.to_tune(grid=True)
    # fpn applies add, pred multiply: the other's init std does not act there
    assert space.num_variants() == 2 * 3 + 2 * 3 + 2 * 3 * 3
    import itertools

    keys = [d.key for d in space.dimensions]
    for values in itertools.product(*(d.choices for d in space.dimensions)):
        ImplicitSpec.from_config(implicit_of(dict(zip(keys, values))))
    assert set(grid) == {"placements", "modeling", "init.add_std", "init.multiply_std"}


def test_variant_becomes_implicit_settings_over_the_configs_own():
    space = parse_space(dict(placements=[["fpn", "pred"]], operators=dict(pred=[["multiply", "add"]]),
                             modeling=["mf"], atoms=[2], init=dict(multiply_std=[0.05])))
    variant = {d.key: d.choices[0] for d in space.dimensions}
    base = dict(modeling="vector", init=dict(add=dict(mean=0.0, std=0.01)), concat_channels=4)
    implicit = implicit_of(variant, base)
    assert implicit == dict(placements=["fpn", dict(name="pred", operators=["multiply", "add"])], modeling="mf",
                            atoms=2, init=dict(add=dict(mean=0.0, std=0.01), multiply=dict(std=0.05)),
                            concat_channels=4)
    spec = ImplicitSpec.from_config(implicit)
    assert spec.init.add.std == 0.01 and spec.init.multiply.std == 0.05 and spec.init.multiply.mean == 1.0
    assert label_of(variant) == "fpn+pred atoms=2 multiply_std=0.05 mf pred:multiply+add"


def test_keys_that_do_not_act_in_a_variant_are_left_out():
    variant = {"placements": "fpn", "operators.pred": "multiply+add", "modeling": "vector", "atoms": 4}
    assert implicit_of(variant) == dict(placements=["fpn"], modeling="vector")
    assert label_of(variant) == "fpn vector"


def test_ranges_become_tune_domains_and_grid_refuses_them():
    from ray.tune.search.sample import Float

    space = parse_space(dict(placements=[["fpn"]], lr={"loguniform": [0.001, 0.1]},
                             init=dict(add_std={"uniform": [0.01, 0.05]})))
    domains = space.to_tune()
    assert isinstance(domains["lr"], Float) and isinstance(domains["init.add_std"], Float)
    assert domains["placements"] == "fpn"  # one choice: a fixed value
    assert space.num_variants() is None
    with pytest.raises(SpaceError, match="grid search needs lists of choices, but init.add_std, lr is a range"):
        space.to_tune(grid=True)


def test_yaml_and_python_space_files(tmp_path):
    yaml_file = tmp_path / "space.yaml"
    yaml_file.write_text("placements: [[fpn], [fpn, pred]]\nlr: {loguniform: [0.001, 0.02]}\n")
    py_file = tmp_path / "space.py"
    py_file.write_text("space = dict(placements=[['fpn'], ['fpn', 'pred']], lr=dict(loguniform=[0.001, 0.02]))\n")
    assert load_space_file(yaml_file) == load_space_file(py_file)
    assert parse_space(load_space_file(yaml_file)).to_config() == dict(
        placements=["fpn", "fpn+pred"], lr=dict(loguniform=[0.001, 0.02]))


@pytest.mark.parametrize("raw, message", [
    ({}, "the search space is empty"),
    (dict(placements=[]), "placements: an empty list of choices"),
    (dict(placemnts=[["fpn"]]), "unknown key 'placemnts' \\(did you mean 'placements'\\?\\)"),
    (dict(placements=[["fpn", "roi"]]), "'roi' is not a placement of this detector.*valid here: fpn, pred, head_in"),
    (dict(placements=[[]]), "each choice is a non-empty list"),
    (dict(placements=[["fpn", "fpn"]]), "names a placement twice"),
    (dict(placements=[["fpn"]], operators=dict(pred=[["multiply"]])),
     "operators: given for 'pred', which no placements choice includes"),
    (dict(operators=dict(pred=[["divide"]])), "operators.pred: each choice is a non-empty list"),
    (dict(modeling=["vector"], atoms=[2, 4]), "atoms: searched, but it only matters with modeling 'mf'"),
    (dict(modeling=["vector", "fancy"]), "modeling: unknown 'fancy'"),
    (dict(atoms=[0]), "atoms: choices must be ints >= 1"),
    (dict(placements=[["pred"]], init=dict(add_std=[0.01])),
     "init.add_std: searched, but no variant of this space uses the 'add' operator"),
    (dict(init=dict(add_std=[-0.01])), "init.add_std: choices must be numbers > 0"),
    (dict(init=dict(add_sdt=[0.01])), "did you mean 'add_std'"),
    (dict(lr={"loguniform": [0.1, 0.01]}), "range \\[0.1, 0.01\\] is empty"),
    (dict(lr={"loguniform": [0.0, 0.01]}), "loguniform needs low > 0"),
    (dict(lr={"normal": [0.0, 0.01]}), "a range is \\{uniform"),
    (dict(lr=[0.01, 0.01]), "a choice appears twice"),
    (dict(modeling={"uniform": [0, 1]}), "takes a list of choices, not a range"),
])
def test_bad_spaces_are_refused_with_the_reason(raw, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(raw, available=("fpn", "pred", "head_in"))


@pytest.mark.parametrize("content, message", [
    ("placements: [[fpn]\n", "could not be read: ParserError"),
    ("- fpn\n", "must hold a mapping"),
])
def test_bad_space_files(tmp_path, content, message):
    path = tmp_path / "space.yaml"
    path.write_text(content)
    with pytest.raises(SpaceError, match=message):
        load_space_file(path)
    with pytest.raises(SpaceError, match="not found"):
        load_space_file(tmp_path / "missing.yaml")
    (tmp_path / "space.json").write_text(json.dumps({}))
    with pytest.raises(SpaceError, match="must be YAML"):
        load_space_file(tmp_path / "space.json")


def test_reported_metrics_follow_the_configs_evaluator():
    from mmengine.config import Config

    from yolor_ray.tune.checks import reported_metrics

    cfg = Config(dict(val_evaluator=dict(type="CocoMetric", metric=["bbox", "segm"])))
    metrics = reported_metrics(cfg)
    assert "coco/bbox_mAP" in metrics and "coco/segm_mAP_75" in metrics and "train/loss" in metrics
    assert reported_metrics(Config(dict(val_evaluator=dict(type="CocoMetric", metric="bbox")))) == [
        *(f"coco/bbox_{k}" for k in ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")), "train/loss"]


def test_concurrency_is_what_the_cluster_holds():
    from yolor_ray.paired.capacity import concurrency, trial_resources
    from yolor_ray.train.spec import RunSettings, Scaling

    cpu = trial_resources(RunSettings(scaling=Scaling(num_workers=2, cpus_per_worker=2)), in_actor=False)
    assert cpu == {"CPU": 5}
    assert concurrency({"CPU": 16.0}, cpu) == 3
    gpu = trial_resources(RunSettings(scaling=Scaling(num_workers=1, use_gpu=True)), in_actor=False)
    assert concurrency({"CPU": 8.0, "GPU": 4.0}, gpu) == 4
    assert concurrency({"CPU": 8.0}, gpu) == 0


def test_early_stopping_flag_picks_asha_or_none():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from yolor_ray.cli.tune import spec_from_argv
    from yolor_ray.tune.tuner import scheduler

    asha = spec_from_argv(["x.py", "--grace-period", "2", "--reduction-factor", "3"])
    exhaustive = spec_from_argv(["x.py", "--search", "grid", "--no-early-stopping"])
    assert asha.early_stopping and not exhaustive.early_stopping
    asha_scheduler = scheduler(asha, epochs=6)
    assert isinstance(asha_scheduler, ASHAScheduler)
    # rungs at grace x R^k below max_t = epochs + 1: epochs 2 and 6
    assert sorted(milestone for milestone, _ in asha_scheduler._brackets[0]._rungs) == [2, 6]
    assert type(scheduler(exhaustive, epochs=6)) is FIFOScheduler


def test_trainer_runs_and_its_old_spelling_make_every_trial_a_torchtrainer_run():
    from yolor_ray.cli.tune import spec_from_argv

    assert not spec_from_argv(["x.py"]).trainer_runs
    assert spec_from_argv(["x.py", "--trainer-runs"]).trainer_runs
    assert spec_from_argv(["x.py", "--trainer-trials"]).trainer_runs  # the alias, kept


def test_paired_interval_within_and_beyond_noise():
    from yolor_ray.noise import paired_difference

    same = paired_difference([0.071, 0.064, 0.069], [0.071, 0.064, 0.069])  # a variant identical to the baseline
    assert (same.mean, same.low, same.high, same.df) == (0.0, 0.0, 0.0, 2) and same.within_noise
    noisy = paired_difference([0.072, 0.061], [0.070, 0.066])  # differences +0.002, -0.005: t(1) = 12.706
    assert noisy.within_noise and noisy.high - noisy.low == pytest.approx(2 * 12.706 * noisy.sd / 2 ** 0.5, rel=1e-4)
    worse = paired_difference([0.001, 0.0, 0.002], [0.070, 0.066, 0.071])
    assert worse.high < 0 and not worse.within_noise
    with pytest.raises(ValueError):
        paired_difference([0.1], [0.1])


SIX = dict(placements=[["fpn"], ["pred"], ["fpn", "pred"]], modeling=["vector", "mf"])


def _labels(settings):
    return [label_of(s) for s in settings]


def test_random_search_over_a_finite_space_never_picks_a_variant_twice():
    space = parse_space(SIX)
    assert space.num_variants() == 6
    keys = [d.key for d in space.dimensions]
    for seed in range(50):
        picked = space.pick(5, seed)
        assert len(picked) == 5 and len(set(_labels(picked))) == 5, (seed, picked)
        for setting in picked:  # the variant dicts trials see: every searched key, values from the lists
            assert list(setting) == keys and all(setting[d.key] in d.choices for d in space.dimensions)
    assert space.pick(4, 7) == space.pick(4, 7)  # seeded
    assert len({tuple(_labels(space.pick(4, seed))) for seed in range(10)}) > 1  # and the seed matters


def test_trials_covering_a_finite_space_run_its_grid(caplog):
    from yolor_ray.tune.checks import trials_of

    # The case: 2 trials of random search over 2 variants ran one of them twice.
    space = parse_space(dict(placements=[["fpn"], ["fpn", "pred"]]))
    with caplog.at_level("INFO", logger="yolor_ray"):
        search, points = trials_of(space, "random", 2, seed=0)
    assert search == "grid" and points == ({"placements": "fpn"}, {"placements": "fpn+pred"})
    assert "--trials 2 covers the whole space of 2 variant(s): running the grid (2 trial(s))" in caplog.text

    six = parse_space(SIX)
    grid = six.pick(6, seed=0, grid=True)
    assert len(set(_labels(grid))) == 6
    for search in ("random", "optuna"):  # Optuna too: with every variant to train, nothing is left to pick
        assert trials_of(six, search, 8, seed=3) == ("grid", tuple(grid))
    assert trials_of(six, "grid", 1, seed=3) == ("grid", tuple(grid))  # a grid ignores --trials
    search, points = trials_of(six, "random", 5, seed=3)
    assert search == "random" and points == tuple(six.pick(5, 3)) and len(set(_labels(points))) == 5
    assert trials_of(six, "optuna", 5, seed=3) == ("optuna", ())  # Optuna samples the space itself


def test_variants_equal_but_for_keys_that_do_not_act_count_once():
    # atoms acts only with mf, operators.pred only where pred is placed
    space = parse_space(dict(placements=[["fpn"], ["pred"]], operators=dict(pred=[["multiply"], ["multiply", "add"]]),
                             modeling=["vector", "mf"], atoms=[2, 4]))
    assert space.num_variants() == 3 * 3  # (fpn, pred:multiply, pred:multiply+add) x (vector, mf 2, mf 4)
    grid = space.pick(100, seed=0)
    assert len(grid) == 9 and len(set(_labels(grid))) == 9
    assert len({json.dumps(implicit_of(v), sort_keys=True) for v in grid}) == 9
    assert grid[0] == {"placements": "fpn", "operators.pred": "multiply", "modeling": "vector", "atoms": 2}
    for seed in range(20):
        assert len(set(_labels(space.pick(8, seed)))) == 8

    # the init of an operator that none of the variant's placements applies
    default = parse_space(DEFAULT_SPACE)
    grid = default.pick(100, seed=0)
    assert len(grid) == 30 and len({json.dumps(effective(v), sort_keys=True) for v in grid}) == 30
    made = {json.dumps(implicit_of({k: v for k, v in setting.items() if k != f"init.{unused}_std"}), sort_keys=True)
            for setting in grid for unused in [{"fpn": "multiply", "pred": "add"}.get(setting["placements"])]}
    assert len(made) == 30  # without the init that does not act, still 30 different models
    assert sum(v["placements"] == "pred" and v["init.add_std"] != 0.01 for v in grid) == 0
    searched_ops = parse_space(dict(placements=[["pred"]], operators=dict(pred=[["multiply"], ["multiply", "add"]]),
                                    init=dict(add_std=[0.01, 0.02])))
    assert [(v["operators.pred"], v["init.add_std"]) for v in searched_ops.pick(5, seed=0)] == [
        ("multiply", 0.01), ("multiply+add", 0.01), ("multiply+add", 0.02)]


def test_with_a_range_the_lists_of_choices_are_still_dealt_without_replacement():
    space = parse_space(dict(placements=[["fpn"], ["pred"], ["fpn", "pred"]], lr={"loguniform": [0.001, 0.1]}))
    assert space.num_variants() is None and space.num_choice_settings() == 3
    picked = space.pick(2, seed=1)
    assert len(set(_labels(picked))) == 2 and all(list(p) == ["placements"] for p in picked)  # lr: sampled by Tune
    dealt = [p["placements"] for p in space.pick(7, seed=1)]
    assert sorted(dealt[:3]) == sorted(dealt[3:6]) == ["fpn", "fpn+pred", "pred"]  # every setting once per round
    assert space.pick(7, seed=1) == space.pick(7, seed=1)


def test_the_sweeps_searcher_gives_each_trial_its_point(tmp_path):
    """Tune's variant generator (no Ray started) makes one trial per point, with the point's
    settings and the ranges sampled: the configs trials get have the space's keys, as before."""
    from ray.tune.search.sample import Float

    from yolor_ray.tune.tuner import PointsGenerator, searcher

    space = parse_space(dict(placements=[["fpn"], ["pred"], ["fpn", "pred"]], modeling=["vector", "mf"],
                             lr={"loguniform": [0.001, 0.1]}))
    points = tuple(space.pick(4, seed=0))
    generator = searcher("random", 0, 2, space, points)
    generator.add_configurations({"sweep": dict(run=lambda config: None, config=space.to_tune(), num_samples=4)})
    trials = []
    while (trial := generator.next_trial()) is not None:
        trials.append(trial)
        generator.on_trial_complete(trial.trial_id)
    configs = [t.config for t in trials]
    assert [{k: c[k] for k in ("placements", "modeling")} for c in configs] == list(points)
    assert all(set(c) == {"placements", "modeling", "lr"} and 0.001 <= c["lr"] <= 0.1 for c in configs)
    assert len({c["lr"] for c in configs}) == 4
    assert all(t.evaluated_params == t.config for t in trials)  # what Tune shows as the trial's parameters
    assert isinstance(space.to_tune()["lr"], Float)

    # A resumed sweep's generator (Tune's saved state) goes on with the points not yet started.
    generator = searcher("random", 0, 0, space, points)
    generator.add_configurations({"sweep": dict(run=lambda config: None, config=space.to_tune(), num_samples=4)})
    first = generator.next_trial().config
    generator.save_to_dir(str(tmp_path), "session")
    restored = PointsGenerator((), (), 0, 0)
    restored.restore_from_dir(str(tmp_path))
    rest = []
    while (trial := restored.next_trial()) is not None:
        rest.append({k: trial.config[k] for k in ("placements", "modeling")})
    assert [{k: first[k] for k in ("placements", "modeling")}, *rest] == list(points)
