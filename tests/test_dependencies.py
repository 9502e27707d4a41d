"""Dependencies you can rebuild: every import is declared, every declaration is locked.

* Each third-party package imported by ``streams/`` or ``detectors/`` is a runtime
  dependency in ``pyproject.toml``; one imported only by ``tests/``, ``benchmarks/`` or
  ``deploy/`` scripts may be a ``dev`` extra instead. Relying on a package that another
  one happens to bring along breaks the day that one drops it.
* ``requirements.lock`` pins every declared package (runtime and ``dev``) to one exact
  version, so ``make venv`` and CI install the same thing on every machine.
* ``requirements-label-studio.lock`` (Label Studio's own virtualenv, ``make label-studio``)
  pins the Label Studio release named in ``requirements-label-studio.in``, every package
  with its hashes.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
RUNTIME_LOCK = REPO / "requirements-runtime.lock"
LABEL_STUDIO_IN = REPO / "requirements-label-studio.in"
LABEL_STUDIO_LOCK = REPO / "requirements-label-studio.lock"
FIRST_PARTY = {"streams", "detectors", "tests", "benchmarks"}
RUNTIME_CODE = ("streams", "detectors")
DEV_CODE = ("tests", "benchmarks", "deploy")

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _normalize(name: str) -> str:
    """PEP 503 name: ``PyYAML`` and ``pyyaml``, ``mode_streaming`` and ``mode-streaming``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        match = _NAME.match(requirement)
        assert match, f"unreadable requirement {requirement!r} in pyproject.toml"
        names.add(_normalize(match.group(1)))
    return names


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = _requirement_names(project["dependencies"])
    dev = _requirement_names(project["optional-dependencies"]["dev"])
    return runtime, dev


def _locked(lock: Path = LOCK) -> dict[str, list[str]]:
    """Package → pinned versions (several only if the lock forks by platform or Python)."""
    pins: dict[str, list[str]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins.setdefault(_normalize(match.group(1)), []).append(match.group(2))
    return pins


def _third_party_imports(top: str) -> dict[str, list[str]]:
    """Top-level module → files under ``top`` that import it (not stdlib, not ours)."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / top).rglob("*.py")):
        siblings = {p.stem for p in path.parent.iterdir()}  # scripts importing scripts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                root = module.split(".")[0]
                if root in sys.stdlib_module_names or root in FIRST_PARTY or root in siblings:
                    continue
                found.setdefault(root, []).append(str(path.relative_to(REPO)))
    return found


def _undeclared(tops: tuple[str, ...], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for top in tops:
        for module, files in sorted(_third_party_imports(top).items()):
            providers = {_normalize(d) for d in distributions.get(module, [])}
            if not providers:
                problems.append(f"{module} (imported by {files[0]}) is not installed")
            elif not providers & declared:
                problems.append(
                    f"{module} (imported by {files[0]}) comes from {sorted(providers)}, "
                    "which pyproject.toml does not declare"
                )
    return problems


def test_runtime_code_imports_only_runtime_dependencies() -> None:
    runtime, _ = _declared()
    problems = _undeclared(RUNTIME_CODE, runtime)
    assert not problems, "\n".join(problems)


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    runtime, dev = _declared()
    problems = _undeclared(DEV_CODE, runtime | dev)
    assert not problems, "\n".join(problems)


def test_lock_pins_every_declared_dependency() -> None:
    runtime, dev = _declared()
    pins = _locked()
    missing = sorted((runtime | dev) - set(pins))
    assert not missing, f"{LOCK.name} has no pin for {missing}: run `make lock`"


def test_lock_pins_one_exact_version_per_package() -> None:
    pins = _locked()
    assert len(pins) > 20, f"{LOCK.name} looks empty: {sorted(pins)}"
    forked = {name: versions for name, versions in pins.items() if len(set(versions)) > 1}
    assert not forked, f"{LOCK.name} pins several versions of {forked}"
    requirement_lines = [
        line
        for line in LOCK.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    loose = [line for line in requirement_lines if not _PIN.match(line)]
    assert not loose, f"{LOCK.name} has requirements that are not `name==version`: {loose}"


def test_runtime_lock_pins_the_runtime_dependencies_as_the_full_lock_does() -> None:
    """The Docker image installs requirements-runtime.lock: the versions CI tested, no dev tools."""
    runtime, dev = _declared()
    image = _locked(RUNTIME_LOCK)
    missing = sorted(runtime - set(image))
    assert not missing, f"{RUNTIME_LOCK.name} has no pin for {missing}: run `make lock`"
    full = _locked()
    differ = {name: (v, full.get(name)) for name, v in image.items() if full.get(name) != v}
    assert not differ, f"{RUNTIME_LOCK.name} and {LOCK.name} disagree: {differ}"
    dev_only = sorted((dev - runtime) & set(image))
    assert not dev_only, f"{RUNTIME_LOCK.name} carries dev tools {dev_only}"


def test_label_studio_lock_pins_the_release_asked_for_with_hashes() -> None:
    asked = [
        line.strip()
        for line in LABEL_STUDIO_IN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert asked == [line for line in asked if _PIN.match(line)] and asked, (
        f"{LABEL_STUDIO_IN.name} should pin exact versions (name==version); got {asked}"
    )
    pins = _locked(LABEL_STUDIO_LOCK)
    for requirement in asked:
        match = _PIN.match(requirement)
        assert match
        name, version = _normalize(match.group(1)), match.group(2)
        assert pins.get(name) == [version], (
            f"{LABEL_STUDIO_LOCK.name} pins {name} at {pins.get(name)}, "
            f"{LABEL_STUDIO_IN.name} asks for {version}: run `make lock-label-studio`"
        )
    text = LABEL_STUDIO_LOCK.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    unhashed = [b.split()[0] for b in blocks if _PIN.match(b) and "--hash=sha256:" not in b]
    assert not unhashed, f"{LABEL_STUDIO_LOCK.name} pins without hashes: {unhashed}"
