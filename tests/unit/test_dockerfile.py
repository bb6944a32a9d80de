"""The worker image (Dockerfile) and the stack (template.yaml) agree, and the image's commands
are ones the `pagedrop` command accepts. No Docker needed: the files are read as text."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from handler.cli import build_parser
from handler.engines.vlm.profiles import PROFILES
from handler.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(current)
            current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE)
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in _final_stage():
        if name == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def _user_data_env() -> dict[str, str]:
    launch = load_template()["Resources"]["WorkerLaunchTemplate"]["Properties"]
    script = launch["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"][0]
    return dict(re.findall(r"^\s*(PAGEDROP_[A-Z_]+)=(\S*)$", script, re.MULTILINE))


def test_the_image_runs_the_worker_with_its_health_check_as_a_non_root_user() -> None:
    final = dict(_final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["pagedrop", "worker"]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert final["HEALTHCHECK"].split("CMD", 1)[1].strip() == '["pagedrop", "health"]'
    assert final["USER"].split(":")[0] not in ("0", "root")


def test_the_image_and_the_launch_template_name_the_same_folders() -> None:
    image, instance = _final_env(), _user_data_env()
    for name in ("PAGEDROP_MODEL_DIR", "PAGEDROP_HEALTH_FILE", "PAGEDROP_DEVICE"):
        assert image[name] == instance[name], name
    assert f"--model-dir {image['PAGEDROP_MODEL_DIR']}" in DOCKERFILE


def test_the_engines_the_stack_offers_are_the_ones_the_image_builds() -> None:
    parameters = load_template()["Parameters"]
    built = set(re.findall(r"^\s+([a-z-]+)\) ", DOCKERFILE, re.MULTILINE))
    assert set(parameters["Engine"]["AllowedValues"]) == built
    assert set(parameters["VlmModel"]["AllowedValues"]) <= set(PROFILES)


@pytest.mark.parametrize(
    ("in_dockerfile", "command"),
    [
        (
            'pagedrop models download "$model" --model-dir /opt/pagedrop/models',
            "models download paddleocr-vl --model-dir /opt/pagedrop/models",
        ),
        (
            "pagedrop models check --model-dir /opt/pagedrop/models",
            "models check --model-dir /opt/pagedrop/models",
        ),
    ],
)
def test_the_model_stage_commands_parse(in_dockerfile: str, command: str) -> None:
    assert in_dockerfile in DOCKERFILE
    args = build_parser().parse_args(command.split())
    assert args.command == "models"
    assert args.model_dir == Path("/opt/pagedrop/models")


def test_the_build_context_holds_what_pip_install_reads() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!handler"} <= set(rules)
