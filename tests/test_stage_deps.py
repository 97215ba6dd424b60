"""Every stage of dvc.yaml lists every project module its script imports (transitively), so that
editing a module makes exactly the stages that run it stale; and the import walker
(hybrid_retrieval/stage_deps.py) behind that check, on a tiny fake project."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from hybrid_retrieval.stage_deps import (format_missing, imported_files, load_stages,
                                         missing_deps, stage_script, stages_importing)

ROOT = Path(__file__).resolve().parents[1]


def test_every_stage_lists_every_module_its_script_imports() -> None:
    missing = missing_deps(ROOT / "dvc.yaml")
    if missing:
        pytest.fail("dvc.yaml: these stages run project modules their deps do not list "
                    "(<stage>: <module>):\n" + format_missing(missing), pytrace=False)


def test_every_stage_of_dvc_yaml_runs_a_script_the_check_finds() -> None:
    """Guards the check above: a command it cannot parse would pass silently."""
    for stage in load_stages(ROOT / "dvc.yaml"):
        script = stage_script(stage.cmd)
        assert script and (ROOT / script).is_file(), f"{stage.name}: no script in {stage.cmd!r}"


# ---------------------------------------------------------------------------------------------
# The walker on a fake project
# ---------------------------------------------------------------------------------------------

FAKE = {
    "pkg/__init__.py": "",
    "pkg/a.py": "import os\nimport yaml\nfrom .b import thing\n",          # relative import
    "pkg/b.py": "from . import c\nthing = 1\n",                            # submodule import
    "pkg/c.py": "def late():\n    from pkg import d\n    return d\n",     # inside a function
    "pkg/d.py": "import pkg.a\n",                                          # cycle back to a
    "pkg/sub/__init__.py": "",
    "pkg/sub/e.py": "from ..b import thing\n",                             # two dots
    "pkg/unused.py": "import pkg.a\n",
    "stages/run.py": "from pkg.a import thing\n",
    "stages/helper.py": "import pkg.sub.e\n",
    "stages/other.py": "import helper\n",             # a sibling script (sys.path[0] = stages/)
}

ALL_OF_RUN = {"stages/run.py", "pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/c.py",
              "pkg/d.py"}


@pytest.fixture
def fake_project(tmp_path: Path) -> Path:
    for name, text in FAKE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _rel(paths: set[Path], root: Path) -> set[str]:
    return {p.relative_to(root.resolve()).as_posix() for p in paths}


def test_walker_follows_relative_submodule_function_level_imports_and_cycles(
        fake_project: Path) -> None:
    found = _rel(imported_files(fake_project / "stages/run.py", fake_project), fake_project)
    assert found == ALL_OF_RUN - {"stages/run.py"}


def test_walker_resolves_sibling_scripts_and_parent_relative_imports(fake_project: Path) -> None:
    found = _rel(imported_files(fake_project / "stages/other.py", fake_project), fake_project)
    assert found == {"stages/helper.py", "pkg/__init__.py", "pkg/sub/__init__.py",
                     "pkg/sub/e.py", "pkg/b.py", "pkg/c.py", "pkg/d.py", "pkg/a.py"}


def _write_dvc_yaml(root: Path, stages: dict) -> Path:
    (root / "params.yaml").write_text(yaml.safe_dump({"langs": ["pt", "de"]}), encoding="utf-8")
    path = root / "dvc.yaml"
    path.write_text(yaml.safe_dump({"stages": stages}), encoding="utf-8")
    return path


def test_missing_deps_names_each_stage_and_module_it_forgets(fake_project: Path) -> None:
    complete = sorted(ALL_OF_RUN)
    dvc_yaml = _write_dvc_yaml(fake_project, {
        "ok": {"cmd": "python stages/run.py --out x", "deps": complete + ["data/in"]},
        "by_folder": {"cmd": "python stages/run.py", "deps": ["stages/run.py", "pkg/"]},
        "gap": {"cmd": "python stages/run.py", "deps": [d for d in complete if d != "pkg/c.py"]},
        "each": {"foreach": "${langs}", "do": {"cmd": "python -u stages/run.py --lang ${item}",
                                               "deps": ["stages/run.py", "data/${item}"]}},
        "shell": {"cmd": "echo no python here", "deps": []},
    })
    missing = missing_deps(dvc_yaml)
    assert missing == {"gap": ["pkg/c.py"],
                       "each@${item}": sorted(ALL_OF_RUN - {"stages/run.py"})}
    assert format_missing({"gap": ["pkg/c.py"]}) == "gap: pkg/c.py"
    assert set(missing_deps(dvc_yaml, expand=True)) == {"gap", "each@pt", "each@de"}


def test_stages_importing_expands_foreach_like_dvc(fake_project: Path) -> None:
    dvc_yaml = _write_dvc_yaml(fake_project, {
        "run": {"cmd": "python stages/run.py", "deps": []},
        "other": {"cmd": "python stages/other.py", "deps": []},
        "each": {"foreach": "${langs}", "do": {"cmd": "python stages/run.py ${item}"}},
    })
    assert stages_importing(dvc_yaml, "pkg/c.py") == {"run", "other", "each@pt", "each@de"}
    assert stages_importing(dvc_yaml, "pkg/sub/e.py") == {"other"}
    assert stages_importing(dvc_yaml, "pkg/unused.py") == set()
    expanded = {s.name: s.cmd for s in load_stages(dvc_yaml, expand=True)}
    assert expanded["each@de"] == "python stages/run.py de"


def test_foreach_over_a_mapping_substitutes_item_fields_and_names_items_by_key(
        fake_project: Path) -> None:
    """As dvc.yaml's ``evaluate``: ``foreach`` over a mapping, ``${item.<field>}`` and ``${key}``
    in the command, deps, outs and metrics; the items are named ``<stage>@<key>``."""
    dvc_yaml = _write_dvc_yaml(fake_project, {
        "evaluate": {"foreach": {"base": {"model": "models/base", "prefix": "base"},
                                 "trained": {"model": "models/trained", "prefix": "eval"}},
                     "do": {"cmd": "python stages/run.py --model ${item.model} --tag ${key} "
                                   "--out m/${item.prefix}.json",
                            "deps": ["stages/run.py", "pkg/", "${item.model}"],
                            "outs": [{"m/${item.prefix}_rows.parquet": {"cache": False}},
                                     "m/${item.prefix}.png"],
                            "metrics": [{"m/${item.prefix}.json": {"cache": False}}]}},
    })
    stages = {s.name: s for s in load_stages(dvc_yaml, expand=True)}
    assert set(stages) == {"evaluate@base", "evaluate@trained"}
    trained = stages["evaluate@trained"]
    assert trained.cmd == ("python stages/run.py --model models/trained --tag trained "
                           "--out m/eval.json")
    assert trained.deps == ("stages/run.py", "pkg/", "models/trained")
    assert trained.outs == ("m/eval_rows.parquet", "m/eval.png")
    assert trained.metrics == ("m/eval.json",)
    assert stages["evaluate@base"].deps[-1] == "models/base"
    assert [s.name for s in load_stages(dvc_yaml)] == ["evaluate@${item}"]    # the template
    assert missing_deps(dvc_yaml, expand=True) == {}
    assert stages_importing(dvc_yaml, "pkg/c.py") == {"evaluate@base", "evaluate@trained"}


def test_a_syntax_error_in_a_module_is_reported_not_skipped(fake_project: Path) -> None:
    (fake_project / "pkg/b.py").write_text(textwrap.dedent("def broken(:\n"), encoding="utf-8")
    with pytest.raises(SyntaxError):
        imported_files(fake_project / "stages/run.py", fake_project)
