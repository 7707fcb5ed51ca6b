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
