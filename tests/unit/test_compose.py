"""The compose file stays true to the node's settings (no Docker engine runs here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cluster import config

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.mark.parametrize("name", ["node1", "node2", "node3"])
def test_each_node_environment_is_a_valid_node_configuration(name: str) -> None:
    env = {k: str(v) for k, v in services()[name]["environment"].items()}
    env["FSM_CLUSTER_SECRET"] = "a-long-random-secret"  # compose substitutes it
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    settings = config.from_args(parser.parse_args([]), env)
    assert settings.raft == f"{name}:7000"
    assert settings.redis == "redis://redis:6379/0"
    others = {f"node{i}:7000" for i in (1, 2, 3)} - {settings.raft}
    assert {p.raft for p in settings.peers} == others


def test_non_loopback_raft_is_refused_without_the_secret() -> None:
    env = {k: str(v) for k, v in services()["node1"]["environment"].items()}
    env.pop("FSM_CLUSTER_SECRET")
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    with pytest.raises(config.SettingsError):
        config.from_args(parser.parse_args([]), env)
