"""``detectors/`` is plain Python + River: it never imports Kafka, Faust, Prometheus or ``streams``.

Checked twice: statically, every import statement in ``detectors/**/*.py`` (including
imports inside functions); and dynamically, in a fresh interpreter that imports every
``detectors`` module, which also catches a forbidden package pulled in through a dependency.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import detectors

REPO = Path(__file__).resolve().parents[1]
DETECTORS_DIR = Path(detectors.__file__).resolve().parent

#: Top-level modules that belong to the Kafka/metrics side, never to the science.
FORBIDDEN = (
    "aiokafka",
    "confluent_kafka",
    "faust",
    "kafka",
    "mode",
    "prometheus_client",
    "streams",
)


def _is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in one file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _detectors_modules() -> list[str]:
    prefix = f"{detectors.__name__}."
    return sorted(info.name for info in pkgutil.walk_packages(detectors.__path__, prefix))


def test_no_detectors_source_imports_the_kafka_side() -> None:
    files = sorted(DETECTORS_DIR.rglob("*.py"))
    assert len(files) > 1, f"no modules found under {DETECTORS_DIR}"
    offending = [
        f"{path.relative_to(REPO)}:{line}: import {module}"
        for path in files
        for line, module in _imports(path)
        if _is_forbidden(module)
    ]
    assert not offending, (
        "detectors/ must not import " + ", ".join(FORBIDDEN) + ":\n" + ("\n".join(offending))
    )


def test_importing_every_detectors_module_loads_nothing_from_the_kafka_side() -> None:
    modules = _detectors_modules()
    assert modules, "pkgutil found no detectors modules"
    code = (
        f"import detectors, {', '.join(modules)}\n"
        "import sys\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    # A fresh interpreter: this test process has long since imported streams and Kafka.
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert set(modules) <= loaded  # the import really ran
    pulled_in = sorted({module.split(".")[0] for module in loaded if _is_forbidden(module)})
    assert not pulled_in, f"importing detectors loaded {pulled_in}"
