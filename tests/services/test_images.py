"""The service images hold the product and nothing of its development tooling.

`docker build` cannot run here (no engine), so the Dockerfiles are read instead: what their COPY lines
put into /app, checked against what each service imports (every first-party module it reaches is
copied, and none of them is dev tooling); the wheel is built and listed; and each service app is
imported in a fresh virtual environment that has only the product's dependencies.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("dispatcher", "fetcher", "loader")
DEV_TOOLING = ("emulators", "tests", "bench")
FIRST_PARTY = ("shared", "services", *DEV_TOOLING)


def copied_paths(dockerfile: Path) -> list[str]:
    """The repository paths a Dockerfile's COPY lines take (sources, relative to the build context)."""
    out = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            out += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return out


def imported_modules(entry: str) -> set[str]:
    """Every first-party module reachable from `entry` by its imports (top-level and in functions)."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_path(name)
        if path is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
    return seen


def _module_path(name: str) -> Path | None:
    if name.split(".")[0] not in FIRST_PARTY:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_copies_no_dev_tooling(service):
    copied = copied_paths(ROOT / "services" / service / "Dockerfile")
    assert copied, "no COPY line found"
    assert not [p for p in copied if p.split("/")[0] in DEV_TOOLING]
    assert "emulators" not in (ROOT / "services" / service / "Dockerfile").read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_everything_the_service_imports_is_in_the_image_and_none_of_it_is_dev_tooling(service):
    modules = imported_modules(f"services.{service}.app")
    assert f"services.{service}.app" in modules and "shared.bootstrap" in modules
    dev = sorted(m for m in modules if m.split(".")[0] in DEV_TOOLING)
    assert dev == [], f"services.{service} reaches development tooling: {dev}"
    copied = copied_paths(ROOT / "services" / service / "Dockerfile")
    missing = [m for m in modules if not any(str(_module_path(m).relative_to(ROOT)).startswith(p) for p in copied)]
    assert missing == []
    # shared/resources.py reads infra/resources.yaml next to the package: the image must hold it there.
    assert "infra/resources.yaml" in copied


def product_tree(into: Path) -> Path:
    """The checkout as `pip install .` sees it, copied: a build writes build/ into its source tree."""
    into.mkdir(parents=True)
    for name in ("pyproject.toml", "requirements.lock", "README.md", "shared", "services", *DEV_TOOLING):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy(source, into / name)
    return into


def pip(python: Path | str, *args: str, cwd: Path) -> None:
    command = [str(python), "-m", "pip", *args, "-q", "--disable-pip-version-check"]
    subprocess.run(command, check=True, capture_output=True, timeout=900, cwd=cwd)


def test_the_product_wheel_holds_only_shared_and_services(tmp_path):
    """Built from a checkout that holds the dev tooling too: it stays out."""
    pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        "out",
        str(product_tree(tmp_path / "src")),
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "out").glob("*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"shared", "services"}


@pytest.mark.slow
def test_each_service_app_imports_with_only_the_product_dependencies(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    pip(python, "install", "-c", str(ROOT / "requirements.lock"), str(product_tree(tmp_path / "src")), cwd=tmp_path)
    probe = "; ".join(f"import services.{s}.app" for s in SERVICES)
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for dev in ("emulators", "bqemulator", "pytest"):
        absent = subprocess.run([str(python), "-c", f"import {dev}"], cwd=tmp_path, capture_output=True, timeout=60)
        assert absent.returncode != 0, f"{dev} is importable in a product-only environment"
