"""No Docker engine where this is developed: these checks keep the files honest by reading."""

import importlib
import re
import shlex

import yaml

from app.cli import cli
from app.worker import lanes
from tests.services import ROOT

DOCKER_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
WORKERS = {f"worker-{lane.name}" for lane in lanes.LANES}
APP_SERVICES = {"api", "beat", "migrate", *WORKERS}


def _compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (ROOT / "docker-compose.yml").read_text()
    )["services"]
    return services


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _assert_runnable(command: list[str]) -> None:
    """The python entry points a container command names exist in the code."""
    assert command[:2] == ["python", "-m"], command
    module = command[2]
    if module == "uvicorn":
        target = command[command.index("--factory") + 1]
        mod, attr = target.split(":")
        assert callable(getattr(importlib.import_module(mod), attr))
    elif module == "celery":
        importlib.import_module(command[command.index("-A") + 1])
    elif module == "app.cli":
        assert command[3] in cli.commands  # type: ignore[attr-defined]
    elif module == "app.sandbox":
        assert callable(importlib.import_module("app.sandbox.__main__").main)
    else:
        assert module == "alembic", command


def test_dockerfile_is_well_formed_and_installs_from_the_lock() -> None:
    instructions = _dockerfile_instructions()

    assert instructions[0][0] == "FROM"
    assert {name for name, _ in instructions} <= DOCKER_INSTRUCTIONS
    assert any(n == "COPY" and "requirements.lock" in a for n, a in instructions)
    assert any(n == "RUN" and "-r requirements.lock" in a for n, a in instructions)
    assert any(n == "USER" for n, _ in instructions)
    cmd = next(a for n, a in instructions if n == "CMD")
    _assert_runnable(yaml.safe_load(cmd))


def test_compose_has_every_service_with_healthchecks_and_one_image() -> None:
    services = _compose()

    assert {"api", *WORKERS, "beat", "sandbox", "postgres", "redis"} <= set(services)
    for name in ("api", *WORKERS, "beat", "sandbox", "postgres", "redis"):
        assert "test" in services[name]["healthcheck"], name  # type: ignore[operator]
    images = {services[name]["image"] for name in (*APP_SERVICES, "sandbox")}
    assert images == {"sellerdesk:latest"}


RESTART_POLICIES = {"always", "unless-stopped"}
ONE_SHOT = {"migrate"}  # a job: retried on failure, no healthcheck once it has finished


def test_compose_restarts_every_service_and_checks_its_health() -> None:
    services = _compose()

    for name, service in services.items():
        healthcheck = service["healthcheck"]
        assert isinstance(healthcheck, dict), name
        if name in ONE_SHOT:
            assert service["restart"] == "on-failure", name
            assert healthcheck == {"disable": True}, name
            continue
        assert service["restart"] in RESTART_POLICIES, name
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        for key in ("interval", "timeout", "retries"):
            assert key in healthcheck, (name, key)


def test_compose_healthchecks_probe_what_each_service_is_for() -> None:
    services = _compose()
    probe = {name: service["healthcheck"].get("test", []) for name, service in services.items()}  # type: ignore[attr-defined]

    assert "pg_isready" in probe["postgres"][1]
    assert probe["redis"][1:] == ["redis-cli", "ping"]
    assert "http://127.0.0.1:8000/healthz" in probe["api"][-1]
    assert "8000" in services["api"]["command"]  # the port the probe asks
    assert "http://127.0.0.1:8100/_sandbox/health" in probe["sandbox"][-1]
    assert probe["beat"][1:5] == ["python", "-m", "app.cli", "check-heartbeat"]
    _assert_runnable(probe["beat"][1:])
    for name in WORKERS:  # each lane's worker: its own node stamping its own lane
        kind, line = probe[name]
        command = shlex.split(line)
        lane = name.removeprefix("worker-")
        assert kind == "CMD-SHELL", name
        assert command[:4] == ["python", "-m", "app.cli", "check-heartbeat"], name
        assert command[command.index("--lane") + 1] == lane, name
        assert command[command.index("--node") + 1].startswith(f"w-{lane}@"), name
        _assert_runnable(command)


def test_compose_starts_the_app_on_healthy_services() -> None:
    services = _compose()

    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        if name not in ONE_SHOT:
            assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_compose_commands_name_code_that_exists() -> None:
    services = _compose()

    for name in (*APP_SERVICES, "sandbox"):
        command = services[name]["command"]
        assert isinstance(command, list)
        _assert_runnable(command)


def test_compose_keeps_secrets_out_of_the_file() -> None:
    for name in APP_SERVICES:
        env = _compose()[name]["environment"]
        assert isinstance(env, dict)
        assert env["SECRETS_KEY"].startswith("${SECRETS_KEY:?")
        assert env["JWT_SECRET"].startswith("${JWT_SECRET:?")
        assert env["ENV"] == "production"


def test_compose_runs_api_workers_with_the_app_environment() -> None:
    services = _compose()

    api_env = services["api"]["environment"]
    assert isinstance(api_env, dict)
    assert api_env.pop("WEB_CONCURRENCY") == "${WEB_CONCURRENCY:-2}"
    for name in WORKERS:
        assert services[name]["environment"] == api_env, name  # the anchor's, merged


def test_compose_runs_a_worker_for_every_lane_as_make_run_does() -> None:
    services = _compose()

    for lane in lanes.LANES:
        worker = services[f"worker-{lane.name}"]
        assert worker["command"] == lanes.worker_argv(lane, python="python"), lane.name
        probe = " ".join(worker["healthcheck"]["test"])  # type: ignore[index]
        assert f"check-heartbeat --lane {lane.name} --node {lane.node}@$$HOSTNAME" in probe
    consumed = {
        command[command.index("--queues") + 1]
        for service in services.values()
        if isinstance(command := service.get("command"), list) and "--queues" in command
    }
    assert consumed == {lane.name for lane in lanes.LANES}


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash)?\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]

    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.split()[:2] == ["make", "test"] for line in ci.splitlines())
