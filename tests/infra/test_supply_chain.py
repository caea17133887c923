"""What goes into the images: a base pinned by digest, dependencies installed only from a hashed lock of
exactly the product's closure, and no secret file in the build context.

requirements-images.lock is made from pyproject.toml's [project].dependencies (plus the build backend,
setuptools) at requirements.lock's versions, every distribution with its sha256 (uv, from PyPI):

    echo setuptools==80.9.0 | uv pip compile pyproject.toml - -c requirements.lock --generate-hashes \
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-images.lock
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.services.test_images import SERVICES, copied_paths, pip, product_tree

REPO = Path(__file__).resolve().parents[2]
IMAGE_LOCK = REPO / "requirements-images.lock"
DOCKERFILES = sorted([*(REPO / "services").glob("*/Dockerfile"), REPO / "emulators" / "Dockerfile"])
FROM = re.compile(r"^FROM\s+(?P<image>\S+)", re.IGNORECASE | re.MULTILINE)
DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
# What the Dockerfiles run: the lock alone, every file's hash checked, nothing resolved; then the product.
LOCK_INSTALL = ("pip", "install", "--no-cache-dir", "--require-hashes", "--no-deps")
PRODUCT_INSTALL = ("pip", "install", "--no-cache-dir", "--no-deps", "--no-build-isolation")


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (hash continuation lines and comments skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def hashed_requirements(path: Path) -> dict[str, list[str]]:
    """name -> its sha256 hashes, from a pip requirements file with `\\` continuations."""
    out: dict[str, list[str]] = {}
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        name = canonicalize_name(re.match(r"[A-Za-z0-9._-]+", line).group())
        out[name] = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
    return out


def closure(roots: list[str]) -> set[str]:
    """Every distribution the roots need, read from the installed metadata (requirements.lock's versions,
    installed in this environment), markers evaluated for this interpreter (Linux, CPython 3.11, as the
    images), extras followed."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        req, via_extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": via_extra}):
            continue
        name = canonicalize_name(req.name)
        extras = sorted(req.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen.add(key)
        for dep in metadata.distribution(name).requires or []:
            child = Requirement(dep)
            if child.marker is None:
                todo.append((child, ""))
            else:
                for extra in ["", *extras]:
                    if child.marker.evaluate({"extra": extra}):
                        todo.append((child, extra))
                        break
    return {key.split("[")[0] for key in seen}


def product_roots() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


# --- Base image -------------------------------------------------------------------------------------


def test_every_image_starts_from_one_base_pinned_by_digest():
    bases = {path.relative_to(REPO).as_posix(): FROM.findall(path.read_text()) for path in DOCKERFILES}
    assert len(bases) == 4
    for dockerfile, images in bases.items():
        assert images, f"{dockerfile}: no FROM"
        for image in images:
            assert DIGEST.match(image), f"{dockerfile}: FROM {image} is not pinned by digest"
            assert image.startswith("python:3.11"), f"{dockerfile}: FROM {image} is not the project's Python"
    assert len({i for images in bases.values() for i in images}) == 1, bases
    for path in DOCKERFILES:
        assert "imagetools inspect python:3.11-slim" in path.read_text(), f"{path}: say how to refresh the digest"


# --- Hashed installs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_install_dependencies_only_from_the_hashed_lock(dockerfile):
    runs = [" ".join(line.split()) for line in dockerfile.read_text().splitlines() if line.startswith("RUN ")]
    assert [r for r in runs if "pip " in r] == [
        f"RUN {' '.join(LOCK_INSTALL)} -r requirements-images.lock && pip check",
        f"RUN {' '.join(PRODUCT_INSTALL)} . && pip check",
    ]
    copied = copied_paths(dockerfile)
    assert "requirements-images.lock" in copied and "requirements.lock" not in copied


def test_the_image_lock_pins_exactly_the_product_closure_at_requirements_lock_versions():
    locked = pins(IMAGE_LOCK)
    dev_pins = pins(REPO / "requirements.lock")
    wanted = closure(product_roots())
    assert set(locked) == wanted, f"missing {sorted(wanted - set(locked))}, extra {sorted(set(locked) - wanted)}"
    assert {n: v for n, v in locked.items() if dev_pins.get(n) != v} == {}, "versions differ from requirements.lock"
    # what pyproject.toml pins itself is what the lock holds
    for root in map(Requirement, product_roots()):
        assert str(root.specifier) == f"=={locked[canonicalize_name(root.name)]}", root


def test_every_locked_distribution_has_hashes():
    hashes = hashed_requirements(IMAGE_LOCK)
    assert set(hashes) == set(pins(IMAGE_LOCK))
    assert {name for name, found in hashes.items() if not found} == set()


def test_the_closure_reader_follows_extras_and_markers():
    """google-api-core[grpc] brings grpcio-status; colorama is Windows-only; dev tooling is not reached."""
    reached = closure(["google-api-core[grpc]==2.44.0", "click==8.5.1"])
    assert {"google-api-core", "grpcio", "grpcio-status"} <= reached
    assert "colorama" not in reached
    assert not {"pytest", "bqemulator", "duckdb-extension-spatial"} & closure(product_roots())


# --- No secrets in the build context or the repository -------------------------------------------------


def test_env_files_stay_out_of_git_and_of_image_builds():
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in (REPO / ".dockerignore").read_text().splitlines()


# --- The images' install, for real, in a fresh environment -------------------------------------------


@pytest.mark.slow
def test_a_fresh_environment_installs_from_the_hashed_lock_and_imports_every_service(tmp_path):
    """What the Dockerfiles run, minus Docker: the lock with --require-hashes (pip refuses a file whose hash
    differs), the product with --no-deps, `pip check` (fails if the lock missed a dependency), imports."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    pip(python, *LOCK_INSTALL[1:], "-r", str(IMAGE_LOCK), cwd=tmp_path)
    pip(python, *PRODUCT_INSTALL[1:], str(product_tree(tmp_path / "src")), cwd=tmp_path)
    pip(python, "check", cwd=tmp_path)
    probe = "; ".join(f"import services.{s}.app" for s in SERVICES)
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for dev in ("emulators", "bqemulator", "pytest"):
        absent = subprocess.run([str(python), "-c", f"import {dev}"], cwd=tmp_path, capture_output=True, timeout=60)
        assert absent.returncode != 0, f"{dev} is importable in the image's environment"
    freeze = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, timeout=120)
    installed = {canonicalize_name(line.split("==")[0]) for line in freeze.stdout.splitlines() if "==" in line}
    assert installed - {"pip", "wallet-backfill"} == set(pins(IMAGE_LOCK)), "the environment holds more than the lock"


def test_a_file_whose_hash_differs_is_refused(tmp_path):
    """--require-hashes is not decoration: one wrong hash and pip installs nothing."""
    hashes = hashed_requirements(IMAGE_LOCK)
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(f"six=={pins(IMAGE_LOCK)['six']} --hash=sha256:{'0' * 64}\n")
    assert hashes["six"], "six is in the lock with its hashes"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(tampered),
            "-d",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "DO NOT MATCH THE HASHES" in result.stdout + result.stderr
