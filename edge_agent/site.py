"""A site file checked against what this agent can drive, not just against its schema.

The configuration model (config.py) checks every key's type and range, and nothing
else: it does not know which scale protocols, camera vendors or board pin maps exist,
because those tables belong to the devices, and a configuration that imported the
devices would make every device depend on itself. Here the site is checked against
those tables, across sections (pins two lanes share), and for what a schema cannot
judge (a random-selection secret that is missing or published), with each problem
named by its key path and, when the file is at hand, its line.

    config = load_site(path)            # ConfigError listing every problem, or the site
    problems = site_problems(config)    # the same checks on a model built in code
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import AgentConfig, key_path, locate, parse_config, read_site_file, toml_lines
from edge_agent.devices.anpr.vendors import camera_problems
from edge_agent.devices.gate.pinmap import check_site
from edge_agent.devices.scale.protocols import PROTOCOL_NAMES
from edge_agent.errors import ConfigError
from edge_agent.plates.grammars import TABLE

Problem = tuple[tuple, str]  # (key path as the config's errors spell it, what is wrong)


def load_site(path: str | Path) -> AgentConfig:
    """Read and validate a site file, or raise ConfigError listing every problem."""
    text = read_site_file(path)
    config = parse_config(text, str(path))
    problems = located_problems(config, text)
    if problems:
        raise ConfigError(problems, str(path))
    return config


def site_problems(config: AgentConfig) -> list[str]:
    """Every problem of a site the schema alone does not see (empty when none)."""
    return located_problems(config, "")


def located_problems(config: AgentConfig, text: str) -> list[str]:
    lines = toml_lines(text) if text else {}
    out = []
    for loc, message in _device_problems(config):
        line = locate(loc, lines)
        out.append(f"{f'line {line}: ' if line else ''}{key_path(loc)}: {message}")
    out += check_site([(lane.id, lane.gate) for lane in config.lanes])
    return out


# Secrets printed in this project's files: a site that kept one draws predictably.
PUBLISHED_SECRETS = frozenset({"change-me", "site-secret-change-me"})
MIN_SECRET_CHARS = 16


def secret_problems(config: AgentConfig) -> list[Problem]:
    """A random-selection secret that is missing, short or published, and retired versions."""
    policy = config.policy
    problems: list[Problem] = []
    why = ("without a secret of the site's own, the random selection is predictable to anyone who reads "
           "the code; set one, e.g. from `openssl rand -hex 32` (edge-agent install writes one)")
    if not policy.random_secret:
        problems.append((("policy", "random_secret"), f"missing: {why}"))
    elif policy.random_secret in PUBLISHED_SECRETS:
        problems.append((("policy", "random_secret"), f"the example's published value: {why}"))
    elif len(policy.random_secret) < MIN_SECRET_CHARS:
        problems.append((("policy", "random_secret"), f"shorter than {MIN_SECRET_CHARS} characters: {why}"))
    for version in sorted(policy.retired_random_secrets):
        if version >= policy.random_secret_version:
            problems.append((("policy", "retired_random_secrets"),
                             f"version {version} is not older than random_secret_version "
                             f"{policy.random_secret_version}"))
    return problems


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def metrics_problems(config: AgentConfig) -> list[Problem]:
    """The figures name indicators and lanes: off loopback only behind a token."""
    metrics = config.metrics
    if metrics.enabled and metrics.host not in LOOPBACK and len(metrics.token) < MIN_SECRET_CHARS:
        return [(("metrics", "token"), f"metrics served on {metrics.host} need a token of at least "
                                       f"{MIN_SECRET_CHARS} characters (or host = \"127.0.0.1\")")]
    return []


def plate_country_problems(config: AgentConfig) -> list[Problem]:
    """Home countries local recognition has no plate grammar for."""
    known = [c.code for c in TABLE]
    unknown = [code for code in config.site.plate_countries if code not in known]
    if unknown:
        return [(("site", "plate_countries"), f"no plate grammar for {', '.join(unknown)}; known: {', '.join(known)}")]
    return []


def _device_problems(config: AgentConfig) -> list[Problem]:
    problems: list[Problem] = secret_problems(config) + metrics_problems(config) + plate_country_problems(config)
    for i, lane in enumerate(config.lanes):
        if lane.scale is not None and lane.scale.protocol not in PROTOCOL_NAMES:
            problems.append((("lanes", i, "scale", "protocol"),
                             f"unknown scale protocol {lane.scale.protocol!r}; known: {', '.join(PROTOCOL_NAMES)}"))
    return problems + camera_problems(config.lanes)
