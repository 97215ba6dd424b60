"""Which project modules each DVC stage really runs, and which of them its ``deps`` forget.

A stage script (``python stages/x.py ...``) runs every project module it imports, directly or
through other modules. DVC only reruns a stage when a listed dep changes, so a module missing
from ``deps`` leaves the stage's outputs stale while ``dvc status`` says "up to date".

* :func:`imported_files` walks a script's imports with :mod:`ast` (``import a.b``,
  ``from a import b`` where ``b`` may be a submodule, relative imports, imports inside
  functions or ``try`` blocks) and returns the project files it reaches, transitively.
* :func:`load_stages` reads ``dvc.yaml`` (``foreach`` stages included, over a list or a
  mapping, with ``${item}``, ``${item.<field>}`` and ``${key}`` substituted) and
  :func:`missing_deps` says, per stage, which imported project files its ``deps`` lack.

Only files under the project root (or the script's own folder, which ``python script.py``
puts first on ``sys.path``) count: the standard library and installed packages are not
project modules. Dynamic imports (``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

#: The script of a stage command: ``python [-opts] path/to/script.py`` (also ``python3``).
SCRIPT_RE = re.compile(r"(?:^|[\s;&|(])python3?(?:\s+-\S+)*\s+(\S+\.py)\b")


@dataclass(frozen=True)
class Stage:
    """One stage of ``dvc.yaml``: its name (``translate@pt`` for a ``foreach`` item), its
    command, its deps and the paths of its ``outs`` and ``metrics`` (as written, ``${item}``
    substituted when expanded)."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Walking imports
# ---------------------------------------------------------------------------------------------

def module_file(name: str, search: Sequence[Path]) -> Path | None:
    """The file of the module ``a.b.c`` (``a/b/c.py`` or ``a/b/c/__init__.py``) in the first
    folder of ``search`` that has it; ``None`` when it is not a project module."""
    parts = name.split(".")
    for folder in search:
        for candidate in (folder.joinpath(*parts).with_suffix(".py"),
                          folder.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def _parents_and_self(name: str) -> Iterator[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs each package above it."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _relative_base(package: str, level: int) -> str | None:
    """The package that ``from <level dots> import ...`` starts from inside ``package``."""
    if level == 0:
        return ""
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or not parts:
        return None                      # beyond the top-level package: an ImportError at run
    return ".".join(parts[:len(parts) - (level - 1)])


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every absolute module name an ``import`` anywhere in ``tree`` may load (packages above
    a module included; for ``from m import n`` both ``m`` and ``m.n``, since ``n`` may be a
    submodule). ``package`` is the package of the module, for relative imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(_parents_and_self(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _relative_base(package, node.level)
            if base is None:
                continue
            module = ".".join(part for part in (base, node.module or "") if part)
            if module:
                names.update(_parents_and_self(module))
            names.update(f"{module}.{alias.name}" if module else alias.name
                          for alias in node.names if alias.name != "*")
    return names


@lru_cache(maxsize=1024)
def _imports_of(path: Path, package: str, mtime_ns: int, size: int) -> frozenset[str]:
    """:func:`imported_names` of the file ``path`` (cached while its mtime and size hold)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(imported_names(tree, package))


def _package_of(name: str, path: Path) -> str:
    """The package relative imports of module ``name`` (file ``path``) start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_files(script: Path, root: Path) -> set[Path]:
    """The project files ``python <script>`` imports, transitively (``script`` itself not
    included unless it imports itself). Modules are looked up, as ``sys.path`` would, in the
    script's folder and then in ``root``; files outside both are never returned."""
    script, root = Path(script).resolve(), Path(root).resolve()
    search = [script.parent, root]
    seen: set[Path] = set()
    todo: list[tuple[str, Path]] = [("__main__", script)]
    resolved: dict[str, Path | None] = {}
    while todo:
        name, path = todo.pop()
        stat = path.stat()
        package = "" if name == "__main__" else _package_of(name, path)
        for imported in sorted(_imports_of(path, package, stat.st_mtime_ns, stat.st_size)):
            if imported not in resolved:
                resolved[imported] = module_file(imported, search)
            found = resolved[imported]
            if found is not None and found not in seen:
                seen.add(found)
                todo.append((imported, found))
    return seen


# ---------------------------------------------------------------------------------------------
# Reading dvc.yaml
# ---------------------------------------------------------------------------------------------

def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def foreach_items(foreach: Any, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``foreach`` of a stage as ``{name suffix: item}`` (a list, a mapping, or ``${key}`` of
    params); ``None`` when it cannot be resolved (``${key}`` without those params)."""
    if isinstance(foreach, str):
        match = re.fullmatch(r"\$\{\s*([\w.-]+)\s*\}", foreach.strip())
        foreach = _lookup(params or {}, match.group(1)) if match else None
    if isinstance(foreach, Mapping):
        return {str(key): value for key, value in foreach.items()}
    if isinstance(foreach, list) and all(isinstance(v, (str, int, float)) for v in foreach):
        return {str(value): value for value in foreach}
    return None


#: ``${item.field}`` (``${item.a.b}`` for nested fields) in a ``foreach`` over mappings.
ITEM_FIELD_RE = re.compile(r"\$\{\s*item\.([\w.-]+)\s*\}")


def _substitute(text: str, key: str, item: Any) -> str:
    """``text`` with ``${key}`` and ``${item}`` (a scalar item) or ``${item.<field>}`` (a
    mapping item) replaced; a field the item lacks is left as written."""
    text = text.replace("${key}", key)
    if not isinstance(item, Mapping):
        return text.replace("${item}", str(item))

    def field(match: re.Match) -> str:
        value = _lookup(item, match.group(1))
        return match.group(0) if value is None else str(value)
    return ITEM_FIELD_RE.sub(field, text)


def _make_stage(name: str, body: Mapping[str, Any], key: str | None = None,
                item: Any = None) -> Stage:
    def paths(section: str) -> tuple[str, ...]:
        """The paths of a list section (``deps``, ``outs``, ``metrics``): a path, or a
        one-key mapping ``{path: options}``; substituted for a ``foreach`` item."""
        found = [str(next(iter(entry)) if isinstance(entry, Mapping) else entry)
                 for entry in body.get(section) or []]
        return tuple(found if key is None else (_substitute(p, key, item) for p in found))

    cmd = body.get("cmd", "")
    cmd = " && ".join(cmd) if isinstance(cmd, list) else str(cmd)
    if key is not None:
        cmd = _substitute(cmd, key, item)
    return Stage(name, cmd, paths("deps"), paths("outs"), paths("metrics"))


def load_stages(dvc_yaml: Path, expand: bool = False) -> list[Stage]:
    """The stages of ``dvc_yaml``. A ``foreach`` stage is one :class:`Stage` named
    ``<name>@${item}`` (its ``do`` template, unsubstituted); with ``expand``, one per item,
    named as DVC names them (``translate@pt``), with items of ``${key}`` taken from the
    ``params.yaml`` beside ``dvc_yaml``."""
    dvc_yaml = Path(dvc_yaml)
    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    params_file = dvc_yaml.parent / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8")) if params_file.is_file() \
        else None
    stages: list[Stage] = []
    for name, body in (spec.get("stages") or {}).items():
        if "foreach" not in body:
            stages.append(_make_stage(name, body))
            continue
        items = foreach_items(body["foreach"], params) if expand else None
        if items is None:
            stages.append(_make_stage(f"{name}@${{item}}", body["do"]))
        else:
            stages += [_make_stage(f"{name}@{key}", body["do"], key, item)
                       for key, item in items.items()]
    return stages


def stage_script(cmd: str) -> str | None:
    """The Python script a stage command runs (``python stages/x.py ...``), or ``None``."""
    match = SCRIPT_RE.search(cmd)
    return match.group(1) if match else None


def _covered(module: str, deps: Sequence[str]) -> bool:
    """Whether a dep is ``module`` itself or a folder holding it."""
    clean = [posixpath.normpath(dep).rstrip("/") for dep in deps]
    return any(module == dep or module.startswith(dep + "/") for dep in clean)


def stage_modules(stage: Stage, root: Path) -> set[str]:
    """The project files (posix paths relative to ``root``) that ``stage``'s script runs: the
    script and every project module it imports, transitively. Empty without a script."""
    script = stage_script(stage.cmd)
    if script is None:
        return set()
    root = Path(root).resolve()
    files = imported_files(root / script, root) | {(root / script).resolve()}
    return {path.relative_to(root).as_posix() for path in files}


def missing_deps(dvc_yaml: Path, expand: bool = False) -> dict[str, list[str]]:
    """``{stage name: sorted project files its script runs but its deps lack}`` for each
    stage of ``dvc_yaml`` that misses any (the project root is the folder of ``dvc_yaml``)."""
    root = Path(dvc_yaml).resolve().parent
    missing: dict[str, list[str]] = {}
    for stage in load_stages(dvc_yaml, expand=expand):
        lacking = sorted(m for m in stage_modules(stage, root) if not _covered(m, stage.deps))
        if lacking:
            missing[stage.name] = lacking
    return missing


def stages_importing(dvc_yaml: Path, module: str, expand: bool = True) -> set[str]:
    """Names of the stages of ``dvc_yaml`` whose script runs ``module`` (a path relative to the
    folder of ``dvc_yaml``, e.g. ``hybrid_retrieval/text.py``)."""
    root = Path(dvc_yaml).resolve().parent
    return {stage.name for stage in load_stages(dvc_yaml, expand=expand)
            if module in stage_modules(stage, root)}


def format_missing(missing: Mapping[str, Sequence[str]]) -> str:
    """One ``<stage>: <module>`` line per missing dep."""
    return "\n".join(f"{stage}: {module}" for stage, modules in missing.items()
                     for module in modules)
