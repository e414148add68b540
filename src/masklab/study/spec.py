"""A study file: what one trial is, what varies, the seeds, and the metric that answers the question.

    name: q4-masking-rate
    run: pretrain                                   # pretrain | finetune | continual | generate
    base: {data.corpus: builtin:sotu, train.max_steps: 300}     # the trial kind's --set keys
    grid: {masking.rate: [0.15, 0.3, 0.4, 0.6]}     # every combination ...
    points: [{masking.rate: 0.5, masking.mask_token_fraction: 1.0}]   # ... plus explicit points
    seeds: [0, 1, 2]                                # crossed with every point, never searched
    metric: {name: evaluation.masked_accuracy, goal: maximize}     # a (dotted) key of the trial's summary
    baseline: {masking.rate: 0.15}                  # paired comparisons are made against this point
    published: {finding: ..., citation: ..., claim: {prefer: {masking.rate: 0.4}, over: {masking.rate: 0.15}}}
    needs: {mlm: {run: pretrain, base: {...}}}      # runs made once per study; values say ${needs.mlm}
    scales: {quick: {...}, full: {...}}             # overlays picked with --scale

or, instead of grid/points, `search: {train.lr: {low: 1e-4, high: 1e-2, log: true}}` with `trials: N`
and `confirm: {top: 2, seeds: [1, 2]}`. Everything here is checked before a trial runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from masklab.config import deep_merge, yaml_mapping
from masklab.errors import UserError
from masklab.study.kinds import check_evaluate

RUN_KINDS = ("pretrain", "finetune", "continual", "generate")
SAMPLERS = ("tpe", "random", "cmaes")  # optuna's samplers by name; TPE is optuna's default
PRUNERS = ("none", "median", "hyperband")
NEED_PREFIX = "${needs."
LABEL = "_label"  # a point's name in reports (q7-recipe: "80/10/10"); keys starting with _ are not config keys
KNOWN_KEYS = {
    "name",
    "question",
    "run",
    "config",
    "base",
    "grid",
    "points",
    "search",
    "trials",
    "confirm",
    "sampler",
    "pruner",
    "seeds",
    "metric",
    "metrics",
    "evaluate",
    "baseline",
    "published",
    "needs",
    "scales",
    "scale",
    "minutes",
    "curves",
    "tradeoff",
    "profiles",
    "factor",
}


@dataclass
class Param:
    """One searched key: a float/int range (log or linear) or a list of choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    type: str = "float"  # float | int | categorical
    choices: list | None = None


@dataclass
class Need:
    """A run every trial shares (the model a generation study samples from, a judge): made once."""

    run: str
    base: dict
    config: str = ""


@dataclass
class Claim:
    """The published finding as a comparison of two points: `prefer` is at least as good as / better than `over`."""

    prefer: dict
    over: dict
    relation: str = "at_least"  # at_least | better
    # a search's claim prefers the best configuration it confirmed (prefer: best), whichever that turns out to be;
    # it is judged on the confirmation seeds only, since the search's own seed chose it
    best: bool = False


@dataclass
class Published:
    finding: str
    citation: str
    claim: Claim | None = None
    # further claims of the same finding (Q6: more steps help, and diffusion training helps), each judged alike
    # with its own keys as the factor; `claim` is the headline
    more: list[Claim] = field(default_factory=list)


@dataclass
class StudySpec:
    name: str
    run: str
    metric: str
    goal: str  # maximize | minimize
    seeds: list[int]
    # the smallest difference on the metric that matters (metric: {margin: 0.01}): a paired interval inside
    # +-margin says "equivalent", and one above -margin says "at least as good", so a gap within seed noise
    # still gets a verdict instead of only "inconclusive"; 0 = none stated
    margin: float = 0.0
    base: dict = field(default_factory=dict)
    config: str = ""
    grid: dict[str, list] = field(default_factory=dict)
    points: list[dict] = field(default_factory=list)
    search: dict[str, Param] = field(default_factory=dict)
    trials: int = 0
    sampler: str = "tpe"
    pruner: str = "none"
    confirm_top: int = 0
    confirm_seeds: list[int] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # further summary keys the report tabulates
    evaluate: dict = field(default_factory=dict)  # pretrain trials: `masklab evaluate` options run after training
    baseline: dict = field(default_factory=dict)
    published: Published | None = None
    needs: dict[str, Need] = field(default_factory=dict)
    question: str = ""
    scale: str = ""
    minutes: float = 0.0  # the stated wall time of this scale on 2 CPU cores (builtin studies)
    # metrics.jsonl keys drawn against tokens; default loss + the metric
    curves: list[str] = field(default_factory=list)
    # [x, y]: two summary metrics plotted against each other, one dot per point
    tradeoff: list[str] = field(default_factory=list)
    # summary prefixes drawn per sub-key, e.g. layers.weight_change per layer
    profiles: list[str] = field(default_factory=list)
    # the keys the question is about (init, mode, rate, ...); every other key that varies blocks: comparisons
    # are made within each block (same task, same corpus) and paired by seed. Default: the claim's keys, else
    # the baseline's
    factor: list[str] = field(default_factory=list)
    # where it was read from (builtin:NAME or a path): the report's command that adds seeds names it
    source: str = ""

    @property
    def factor_keys(self) -> list[str]:
        if self.factor:
            return list(self.factor)
        if self.published is not None and self.published.claim is not None:
            claim = self.published.claim
            return list(dict.fromkeys([*claim.prefer, *claim.over, *(self.search if claim.best else [])]))
        return list(self.baseline)

    def further_claims(self) -> list[StudySpec]:
        """This study once per further claim: that claim as its claim, and its keys as the factor (so the other
        varying keys block it)."""
        if self.published is None:
            return []
        return [
            replace(
                self,
                published=replace(self.published, claim=c, more=[]),
                factor=list(dict.fromkeys([*c.prefer, *c.over])),
            )
            for c in self.published.more
        ]

    @property
    def is_search(self) -> bool:
        return bool(self.search)

    def grid_points(self) -> list[dict]:
        """Every combination of the grid, then the explicit points (duplicates dropped, order kept)."""
        keys = list(self.grid)
        combos = (
            [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))] if keys else []
        )
        out, seen = [], set()
        for point in [*combos, *self.points]:
            tag = canonical(point)
            if tag not in seen:
                seen.add(tag)
                out.append(point)
        return out

    def definition(self) -> dict:
        """What decides which trials run and how: two studies of one name must agree on it."""
        d = asdict(self)
        for cosmetic in (
            "question",
            "published",
            "minutes",
            "metrics",
            "curves",
            "baseline",
            "tradeoff",
            "profiles",
            "metric",
            "margin",
            "factor",
            "source",
        ):
            d.pop(cosmetic)
        return d

    def definition_hash(self) -> str:
        return definition_hash(self.definition())


def definition_hash(definition: dict) -> str:
    """The short hash a storage keeps of a study's definition (a spec's, or one stored as JSON)."""
    return hashlib.sha1(canonical(definition).encode()).hexdigest()[:16]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def override_text(key: str, value: Any) -> str:
    """key=value as --set takes it (JSON is YAML, so lists, strings and numbers survive the round trip)."""
    return f"{key}={json.dumps(value)}"


def builtin_names() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("masklab.study").joinpath("builtin").iterdir() if p.name.endswith(".yaml")
    )


def read_study_file(source: str) -> tuple[dict, str]:
    """(the raw mapping, where it came from) for `builtin:NAME` or a YAML path."""
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in builtin_names():
            raise UserError(
                f"unknown study {source!r}; ready-made studies: {', '.join('builtin:' + n for n in builtin_names())}"
            )
        text = resources.files("masklab.study").joinpath("builtin", f"{name}.yaml").read_text(encoding="utf-8")
        where = source
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(
                f"study file {path} does not exist; pass a YAML file or builtin:NAME ({', '.join(builtin_names())})"
            )
        text, where = path.read_text(encoding="utf-8"), str(path)
    return yaml_mapping(text, f"study file {where}", "name:, run:, base:, grid: ..., seeds:, metric:"), where


_EXPONENT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads 1e-4 (no dot) as a string: study files mean the number."""
    if isinstance(value, str) and _EXPONENT.match(value):
        return float(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


def _need(name: str, raw: Any, where: str) -> Need:
    if not isinstance(raw, dict) or raw.get("run") not in ("pretrain", "finetune"):
        raise UserError(f"{where}: needs.{name} must be a mapping with run: pretrain or finetune and base: {{...}}")
    return Need(run=raw["run"], base=dict(raw.get("base") or {}), config=str(raw.get("config", "")))


def _param(key: str, raw: Any, where: str) -> Param:
    if isinstance(raw, list):
        if not raw:
            raise UserError(f"{where}: search.{key} is an empty list of choices; give at least one value")
        return Param(type="categorical", choices=raw)
    if not isinstance(raw, dict) or "low" not in raw or "high" not in raw:
        raise UserError(
            f"{where}: search.{key} must be {{low: L, high: H[, log: true][, type: int]}} or a list of choices"
        )
    low, high = raw["low"], raw["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise UserError(f"{where}: search.{key} low and high must be numbers (got {low!r}, {high!r})")
    if low > high:
        raise UserError(f"{where}: search.{key} has low {low} > high {high}; swap them")
    log = bool(raw.get("log", False))
    if log and low <= 0:
        raise UserError(f"{where}: search.{key} is log-scaled, so low must be > 0 (got {low})")
    kind = raw.get("type", "int" if isinstance(low, int) and isinstance(high, int) and not log else "float")
    if kind not in ("int", "float"):
        raise UserError(f"{where}: search.{key} type must be int or float (got {kind!r})")
    return Param(low=low, high=high, log=log, step=raw.get("step"), type=kind)


def _claim(claim, raw: dict, search: dict, where: str) -> Claim:
    if isinstance(claim, dict) and claim.get("over") == "baseline" and isinstance(raw.get("baseline"), dict):
        claim = {**claim, "over": dict(raw["baseline"])}  # over: baseline names the study's baseline point
    best = isinstance(claim, dict) and claim.get("prefer") == "best"
    if best and not (search and raw.get("baseline") and (raw.get("confirm") or {}).get("seeds")):
        raise UserError(
            f"{where}: published.claim prefer: best needs a search with a baseline: (the point it is compared "
            "with) and confirm: {top, seeds} (the seeds it is judged on)"
        )
    if not isinstance(claim, dict) or not all(
        isinstance(claim.get(k), dict) or (k == "prefer" and best) for k in ("prefer", "over")
    ):
        raise UserError(f"{where}: published.claim must be {{prefer: {{KEY: value}}, over: {{KEY: value}}}}")
    claim = Claim(
        prefer={} if best else claim["prefer"],
        over=claim["over"],
        relation=claim.get("relation", "at_least"),
        best=best,
    )
    if claim.relation not in ("at_least", "better"):
        raise UserError(f"{where}: published.claim.relation must be at_least or better")
    return claim


def parse_spec(raw: dict, where: str, scale: str | None = None) -> StudySpec:
    raw = _numbers(dict(raw))
    scales = raw.pop("scales", {}) or {}
    if not isinstance(scales, dict):
        raise UserError(
            f"{where}: scales must be a mapping of scale name to overrides, e.g. {{quick: {{seeds: [0, 1]}}}}"
        )
    chosen = scale or raw.get("scale") or ("quick" if "quick" in scales else "")
    if chosen:
        if chosen not in scales:
            raise UserError(f"{where} has no scale {chosen!r}; it has: {', '.join(scales) or 'none'}")
        raw = deep_merge(raw, scales[chosen])
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise UserError(
            f"{where}: unknown study key {unknown[0]!r}; valid keys: {', '.join(sorted(KNOWN_KEYS - {'scales'}))}"
        )
    for key in ("name", "run", "metric"):
        if key not in raw:
            raise UserError(f"{where} has no {key}: (a study needs name, run, metric and a grid, points or search)")
    if raw["run"] not in RUN_KINDS:
        raise UserError(f"{where}: run must be one of {', '.join(RUN_KINDS)} (got {raw['run']!r})")
    metric = raw["metric"]
    if isinstance(metric, str):
        metric = {"name": metric}
    if not isinstance(metric, dict) or "name" not in metric:
        raise UserError(f"{where}: metric must be {{name: KEY, goal: maximize|minimize}}")
    goal = metric.get("goal", "maximize")
    if goal not in ("maximize", "minimize"):
        raise UserError(f"{where}: metric goal must be maximize or minimize (got {goal!r})")
    margin = metric.get("margin", 0)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or margin < 0:
        raise UserError(
            f"{where}: metric margin must be a number >= 0 in the metric's units (got {margin!r}), e.g. 0.01"
        )
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise UserError(f"{where}: seeds must be a non-empty list of distinct integers, e.g. [0, 1, 2] (or a count)")
    grid = raw.get("grid") or {}
    points = raw.get("points") or []
    search = raw.get("search") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise UserError(f"{where}: grid must map each key to a list of values, e.g. {{masking.rate: [0.15, 0.4]}}")
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise UserError(f"{where}: grid key {empty[0]} has no values; give at least one or drop the key")
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise UserError(f"{where}: points must be a list of mappings, e.g. [{{masking.rate: 0.5}}]")
    if search and (grid or points):
        raise UserError(f"{where}: a study has either a search or a grid/points, not both; split it into two studies")
    if not search and not grid and not points:
        raise UserError(f"{where}: the grid is empty; give grid: {{KEY: [values]}}, points: [...] or search: {{...}}")
    if not isinstance(search, dict):
        raise UserError(f"{where}: search must map keys to {{low, high[, log]}} or lists of choices")
    trials = int(raw.get("trials", 0))
    if search and trials < 1:
        raise UserError(f"{where}: a search needs trials: N (the number of configurations to try), e.g. trials: 20")
    confirm = raw.get("confirm") or {}
    sampler = str(raw.get("sampler", "tpe"))
    pruner = str(raw.get("pruner", "none"))
    if sampler not in SAMPLERS:
        raise UserError(f"{where}: sampler must be one of {', '.join(SAMPLERS)} (got {sampler!r})")
    if pruner not in PRUNERS:
        raise UserError(f"{where}: pruner must be one of {', '.join(PRUNERS)} (got {pruner!r})")
    published = raw.get("published")
    if published is not None:
        if not isinstance(published, dict) or not {"finding", "citation"} <= set(published):
            raise UserError(
                f"{where}: published must have finding: and citation: (and optionally claim: {{prefer, over}})"
            )
        # one claim, or a list: the first is the headline (the answers page's summary row); each is judged alike
        claims = published.get("claim")
        claims = [] if claims is None else claims if isinstance(claims, list) else [claims]
        claims = [_claim(c, raw, search, where) for c in claims]
        published = Published(
            finding=str(published["finding"]).strip(),
            citation=str(published["citation"]).strip(),
            claim=claims[0] if claims else None,
            more=claims[1:],
        )
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise UserError(f"{where}: base must be a mapping of --set keys to values")
    spec = StudySpec(
        name=str(raw["name"]),
        run=raw["run"],
        metric=str(metric["name"]),
        goal=goal,
        seeds=seeds,
        margin=float(margin),
        base=base,
        config=str(raw.get("config", "")),
        grid=grid,
        points=points,
        search={k: _param(k, v, where) for k, v in search.items()},
        trials=trials,
        sampler=sampler,
        pruner=pruner,
        confirm_top=int(confirm.get("top", 0)),
        confirm_seeds=list(confirm.get("seeds", [])),
        metrics=list(raw.get("metrics", [])),
        evaluate=dict(raw.get("evaluate") or {}),
        baseline=dict(raw.get("baseline") or {}),
        published=published,
        needs={k: _need(k, v, where) for k, v in (raw.get("needs") or {}).items()},
        question=str(raw.get("question", "")).strip(),
        scale=chosen,
        minutes=float(raw.get("minutes", 0) or 0),
        curves=list(raw.get("curves", [])),
        tradeoff=list(raw.get("tradeoff", [])),
        profiles=list(raw.get("profiles", [])),
        factor=[str(k) for k in (raw.get("factor") or [])],
    )
    if spec.tradeoff and len(spec.tradeoff) != 2:
        raise UserError(
            f"{where}: tradeoff must name two metrics [x, y], e.g. [mean_learning_accuracy, mean_forgetting]"
        )
    if (
        spec.baseline
        and not spec.is_search
        and not any(all(p.get(k) == v for k, v in spec.baseline.items()) for p in spec.grid_points())
    ):
        raise UserError(f"{where}: baseline {spec.baseline} is not one of the study's points")
    if spec.baseline and spec.is_search:
        _check_search_baseline(spec, where)
    if spec.evaluate and spec.run != "pretrain":
        raise UserError(f"{where}: evaluate: applies to pretrain trials (the others score themselves)")

    check_evaluate(spec.evaluate, where)
    referenced = {
        text.split("}")[0][len(NEED_PREFIX) :]
        for text in _strings([spec.base, spec.grid, spec.points])
        if text.startswith(NEED_PREFIX)
    }
    missing = sorted(referenced - set(spec.needs))
    if missing:
        raise UserError(f"{where} refers to ${{needs.{missing[0]}}} but needs: has no {missing[0]}")
    return spec


def _check_search_baseline(spec: StudySpec, where: str) -> None:
    """A search's baseline (today's default, say) is a point of its space: every searched key, inside its range."""
    keys = set(spec.baseline)
    if keys != set(spec.search):
        missing = sorted(set(spec.search) - keys) or sorted(keys - set(spec.search))
        raise UserError(f"{where}: a search's baseline must set exactly the searched keys ({missing[0]} differs)")
    for key, value in spec.baseline.items():
        p = spec.search[key]
        inside = value in p.choices if p.type == "categorical" else p.low <= float(value) <= p.high
        if not inside:
            raise UserError(f"{where}: baseline {key}={value} is outside the search space of {key}")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def load_spec(source: str, scale: str | None = None, seeds: str | None = None) -> StudySpec:
    """The study at `source` (a YAML path or builtin:NAME) at `scale`; `seeds` ("0-3", "0,1,2,3") replaces the
    seeds the file gives: a grid's, or a search's confirmation seeds (the ones its answer is judged on)."""
    raw, where = read_study_file(source)
    spec = parse_spec(raw, where, scale)
    spec.source = source
    if spec.config and not source.startswith("builtin:") and not Path(spec.config).is_absolute():
        spec.config = str(Path(source).parent / spec.config)  # config: is relative to the study file, not the shell
    if seeds is not None:
        chosen = parse_seeds(seeds)
        if spec.is_search:
            if not spec.confirm_top:
                raise UserError(
                    f"{where}: --seeds sets a search's confirmation seeds, and this search confirms nothing; "
                    "give it confirm: {top: 2, seeds: [1, 2]}"
                )
            spec.confirm_seeds = chosen
        else:
            spec.seeds = chosen
    return spec


def parse_seeds(text: str) -> list[int]:
    """--seeds: "0-3", "0,1,2,3" or "0-2,7" -> distinct seeds in the order given."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else [int(part)]
        except ValueError:
            span = []
        if not span or any(s < 0 for s in span):
            raise UserError(f"--seeds must be seeds >= 0 as a range or a list, e.g. 0-3 or 0,1,2,3 (got {text!r})")
        seeds += [s for s in span if s not in seeds]
    return seeds


def seeds_text(seeds: list[int]) -> str:
    """The shortest --seeds spelling of a list: 0-3 for [0, 1, 2, 3], else 0,2,5."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))
