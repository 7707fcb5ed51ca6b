"""The compose file parses and starts only what the project's own commands provide."""

from __future__ import annotations

import yaml

from sopflow.cli import main
from tests.conftest import ROOT


def test_every_service_that_runs_sopflow_names_a_real_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = [s["command"] for s in compose["services"].values() if "command" in s]
    ours = [c for c in commands if c[0] == "sopflow"]
    assert ours, "the stack runs sopflow somewhere"
    for command in ours:
        group = main
        for word in command[1:]:
            if word.startswith("-"):
                break
            sub = getattr(group, "commands", {}).get(word)
            if sub is None:
                break
            group = sub
        assert group is not main, f"`{' '.join(command)}` is not a sopflow command"


def test_the_api_waits_for_the_migration_and_the_database() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_stack_has_every_service_a_regency_needs() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "beat", "flower"} <= set(services)
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name], name
    # one scheduler: the workers run without their own
    assert "--no-beat" in services["worker"]["command"]
    assert services["flower"]["command"][:3] == ["celery", "--app", "worker.tasks"]


def test_the_image_builds_from_the_projects_own_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for part in ("engine", "api", "worker", "sopflow", "pyproject.toml"):
        assert f"COPY {part}" in dockerfile
    assert all(line.startswith(("FROM python", "#", "ENV", "WORKDIR", "COPY", "RUN pip", "USER",
                                "EXPOSE", "CMD", "RUN pip")) or not line.strip()
               for line in dockerfile.splitlines())  # fmt: skip
