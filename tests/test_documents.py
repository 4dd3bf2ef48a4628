"""The documents keep their word: every command they show exists with the options they
give it, the ones that need no hardware run as written, and what the source cites exists.

An `edge-agent ...` line in a fenced shell block of README.md, CONTRIBUTING.md or
docs/*.md is an example, parsed against the real command tree: subcommands, options, the
number of arguments, required options. Synopsis lines (`[--json]`, `(A | B)`, `...`) and
commands named in running prose (inline code) are checked for their command and option
names only; `zero|tare` stands for one line per alternative.
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from testkit.processes import REPO, Proc
from testkit.waiting import wait_for

from edge_agent.cli import main
from edge_agent.devices.scale.frame import WeightFrame
from edge_agent.devices.scale.protocols import spec_for

DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"", "sh", "bash", "console", "shell"}
SYNOPSIS_MARKS = re.compile(r"[\[\]()|]|\.\.\.")
PLACEHOLDER = re.compile(r"(?<![\w./=-])[A-Z][A-Z_]+(?![\w./-])")


@dataclass(frozen=True)
class Example:
    document: str
    line: int
    argv: tuple[str, ...]  # after `edge-agent`
    synopsis: bool
    mention: bool = False  # named in running prose: may leave out what it does not discuss

    @property
    def loose(self) -> bool:
        return self.synopsis or self.mention

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def _variants(text: str) -> list[str]:
    """`scale zero|tare --url URL` as one line per alternative (outside brackets)."""
    found = re.search(r"(?<![\w\[(|-])([a-z][\w-]*(?:\|[a-z][\w-]*)+)(?![\w\])|-])", text)
    if found is None or re.search(r"[\[(][^\])]*$", text[:found.start()]):
        return [text]
    return [variant for word in found.group(1).split("|")
            for variant in _variants(text[:found.start()] + word + text[found.end():])]


def _command_words(text: str) -> tuple[tuple[str, ...], bool] | None:
    """The words after `edge-agent` in one shell line, and whether it is a synopsis
    (brackets, alternatives, an ellipsis, or a placeholder such as FILE)."""
    synopsis = bool(SYNOPSIS_MARKS.search(text.split("#")[0]) or PLACEHOLDER.search(text.split("#")[0]))
    if synopsis:
        text = SYNOPSIS_MARKS.sub(" ", text.split("#")[0])
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    while words and words[0] in ("$", "sudo"):
        words.pop(0)
    if not words or Path(words[0]).name != "edge-agent":
        return None
    return tuple(words[1:]), synopsis


def examples_in(path: Path) -> list[Example]:
    text = path.read_text()
    found: list[tuple[int, Example]] = []
    name = str(path.relative_to(REPO))
    fenced: list[tuple[int, int]] = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        fenced.append(block.span())
        if block.group(1) not in SHELL_FENCES:
            continue
        offset = block.start(2)
        logical, start = "", offset
        for raw in block.group(2).splitlines(keepends=True):
            if not logical:
                start = offset
            offset += len(raw)
            stripped = raw.rstrip("\n")
            if stripped.endswith("\\"):
                logical += stripped[:-1] + " "
                continue
            logical += stripped
            for variant in _variants(logical):
                words = _command_words(variant)
                if words is not None:
                    found.append((start, Example(name, text.count("\n", 0, start) + 1, *words)))
            logical = ""
    for span in re.finditer(r"`((?:sudo )?(?:\S*/)?edge-agent [^`]+)`", text):
        if any(a <= span.start() < b for a, b in fenced):
            continue
        for variant in _variants(" ".join(span.group(1).replace("\\|", "|").split())):
            words = _command_words(variant)
            if words is not None:
                found.append((span.start(), Example(name, text.count("\n", 0, span.start()) + 1, *words,
                                                    mention=True)))
    return [example for _, example in sorted(found, key=lambda pair: pair[0])]


def all_examples() -> list[Example]:
    return [example for path in DOCUMENTS for example in examples_in(path)]


def command_problems(argv: tuple[str, ...], loose: bool = False) -> list[str]:
    """What is wrong with `edge-agent argv` against the real command tree (empty: nothing).
    `loose`: check the names only, not the arguments and required options."""
    command: click.Command = main
    path = ["edge-agent"]
    words = list(argv)
    problems: list[str] = []
    with click.Context(main, info_name="edge-agent") as ctx:
        while True:
            options = _options_of(command)
            while words and words[0].startswith("-") and isinstance(command, click.Group):
                if words[0] == "--help":
                    return []
                option = options.get(words.pop(0).partition("=")[0])
                if option is None:
                    return [f"{' '.join(path)} has no option {argv[len(argv) - len(words) - 1]}"]
                if not option.is_flag and not option.count:
                    words = words[1:]
            if not isinstance(command, click.Group) or not words or words[0] == "--help":
                break
            sub = command.get_command(ctx, words[0])
            if sub is None:
                return [f"{' '.join(path)} has no command {words[0]!r}"]
            command = sub
            path.append(words.pop(0))
    if isinstance(command, click.Group):
        return [] if words == ["--help"] or loose else [f"{' '.join(path)} needs a subcommand"]
    options = _options_of(command)
    given: set[str] = set()
    positionals: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and len(word) > 1 and not _is_number(word):
            name, eq, _ = word.partition("=")
            option = options.get(name)
            if option is None:
                problems.append(f"{' '.join(path)} has no option {name}")
            else:
                given.add(option.name or name)
                optional_value = getattr(option, "_flag_needs_value", False)  # `--console [PORT]`
                if optional_value and not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                    i += 1
                elif not (option.is_flag or option.count or optional_value or eq):
                    i += 1
                    if i >= len(words) and not loose:
                        problems.append(f"{' '.join(path)} {name} needs a value")
        else:
            positionals.append(word)
        i += 1
    if loose or "help" in given:
        return problems
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    most = float("inf") if any(a.nargs == -1 for a in arguments) else sum(a.nargs for a in arguments)
    least = sum(max(a.nargs, 1) for a in arguments if a.required)
    if not least <= len(positionals) <= most:
        problems.append(f"{' '.join(path)} takes {least}..{most} arguments, the document gives {positionals}")
    for param in command.params:
        if isinstance(param, click.Option) and param.required and param.name not in given:
            problems.append(f"{' '.join(path)} needs {param.opts[0]}")
    return problems


def _options_of(command: click.Command) -> dict[str, click.Option]:
    out = {opt: p for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    out["--help"] = click.Option(["--help"], is_flag=True)
    return out


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


EXAMPLES = all_examples()


def test_the_documents_show_commands_at_all():
    # A broken extractor would make every other test here vacuous.
    where = {e.document for e in EXAMPLES}
    assert {"README.md", "docs/sync.md", "docs/console.md", "docs/indicators.md"} <= where, where
    assert len(EXAMPLES) >= 25


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_every_documented_command_exists_with_its_options(example):
    assert command_problems(example.argv, example.loose) == [], example


def test_the_checker_finds_what_is_wrong():
    assert command_problems(("sync", "verfiy", "x.json")) == ["edge-agent sync has no command 'verfiy'"]
    assert command_problems(("check-config", "--strict", "site.toml")) == [
        "edge-agent check-config has no option --strict"]
    assert command_problems(("central", "keygen", "extra", "--out", "k", "--name", "n"))
    assert command_problems(("assess", "--weight")) == ["edge-agent assess --weight needs a value"]
    assert command_problems(("sync",)) == ["edge-agent sync needs a subcommand"]
    assert command_problems(("check-config", "site.toml")) == []


# --------------------------------------------------------------------------- run as written

SITE = """[site]
id = "xk-merdare"
region = "xk-rs"
data_dir = "{data}"
[policy]
random_secret = "documents-test-secret-0123"
[rules]
indicator_files = ["{indicators}"]
[[lanes]]
id = "L1"
"""


def run_as_written(examples: list[Example], workdir: Path, monkeypatch, *, stdin: str = "") -> list[str]:
    """Run each example in `workdir` in document order; the outputs."""
    monkeypatch.chdir(workdir)
    outputs = []
    for example in examples:
        result = CliRunner().invoke(main, list(example.argv), input=stdin or None, catch_exceptions=False)
        assert result.exit_code == 0, f"{example.where}: edge-agent {' '.join(example.argv)}\n{result.output}"
        outputs.append(result.output)
    return outputs


def _site(workdir: Path, name: str) -> None:
    indicators = REPO / "firmware_config/indicators/demo.json"
    (workdir / name).write_text(SITE.format(data=workdir / "data", indicators=indicators))


def test_the_key_ceremony_and_a_signed_set_run_as_written(tmp_path, monkeypatch):
    """docs/sync.md: keys, the root, installing it, signing a set and verifying it on a
    site. Publishing needs the RAU's TLS broker and is checked above for its options."""
    wanted = {("central", "keygen"), ("central", "root"), ("sync", "install-root"), ("central", "sign"),
              ("sync", "verify")}
    steps = [e for e in examples_in(REPO / "docs/sync.md") if not e.synopsis and e.argv[:2] in wanted]
    kinds = [e.argv[:2] for e in steps]
    assert kinds.count(("central", "keygen")) >= 2 and kinds.count(("central", "root")) >= 2 and \
        ("sync", "verify") in kinds and ("sync", "install-root") in kinds, steps
    _site(tmp_path, "site.toml")
    shutil.copy(REPO / "firmware_config/indicators/demo.json", tmp_path / "set.json")
    outputs = run_as_written(steps, tmp_path, monkeypatch)
    assert (tmp_path / "central-8.json").is_file() and (tmp_path / "root-2.json").is_file()
    verified = outputs[kinds.index(("sync", "verify"))]
    assert verified.startswith("accepted: central:central@8"), verified


def test_managing_console_users_runs_as_written(tmp_path, monkeypatch):
    """docs/console.md: adding, replacing, listing, disabling and enabling a user, then
    verifying the audit chain those acts wrote."""
    steps = [e for e in examples_in(REPO / "docs/console.md")
             if e.argv[:2] in {("console", "adduser"), ("console", "users"), ("console", "disable"),
                               ("console", "enable")}
             or e.argv == ("audit", "verify", "--config", "SITE.toml", "--local-only")]
    assert len(steps) >= 6, steps
    _site(tmp_path, "SITE.toml")
    outputs = run_as_written(steps, tmp_path, monkeypatch, stdin="a long enough password 1\n" * 2)
    listing = outputs[[e.argv[:2] for e in steps].index(("console", "users"))]
    assert "olga" in listing and "viewer" in listing, listing
    assert "audit log intact" in outputs[-1], outputs[-1]


def test_the_simulator_units_example_starts_a_scale(tmp_path):
    """systemd/edge-agent-sim@.service: its ExecStart with the SIM_ARGS it gives as an
    example starts a weighbridge a reader can decode (on a free port rather than 4001)."""
    unit = (REPO / "systemd/edge-agent-sim@.service").read_text()
    sim_args = re.search(r"^#\s+SIM_ARGS=(.+)$", unit, re.M).group(1)
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    argv = shlex.split(exec_start.replace("%i", "scale").replace("$SIM_ARGS", sim_args))
    assert Path(argv[0]).name == "edge-agent" and command_problems(tuple(argv[1:])) == []
    port = _free_port()
    argv = [str(Path(sys.executable).with_name("edge-agent")), *argv[1:]]
    argv[argv.index("--tcp") + 1] = str(port)
    sim = Proc(argv, tmp_path / "sim.log")
    try:
        frames = wait_for(lambda: _frames_from(port, spec_for(argv[argv.index("--protocol") + 1])) or
                          (not sim.alive() and pytest.fail(sim.output())), 20, what="frames from the simulator")
        assert any(isinstance(f, WeightFrame) for f in frames), frames  # a decoded weight, not garbage
    finally:
        sim.terminate()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frames_from(port: int, spec) -> list:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            parser, frames = spec.parser(), []
            while not frames:
                data = conn.recv(256)
                if not data:
                    return []
                frames = parser.feed(data)
            return frames
    except OSError:
        return []


# --------------------------------------------------------------------------- citations

CITED_FILES = re.compile(r"(?<![\w/.])((?:docs/)?[A-Za-z_-]+\.md)\b")
CITED_HEADINGS = re.compile(r"((?:docs/)?[A-Za-z_-]+\.md),?\s+\(?\"([^\"]+)\"")


def _sources() -> list[Path]:
    paths = [*(REPO / "edge_agent").rglob("*.py"), *(REPO / "benchmarks").glob("*.py"),
             *(REPO / "systemd").iterdir(), *(p for p in (REPO / "firmware_config").rglob("*") if p.is_file()),
             REPO / "Makefile"]
    return [p for p in paths if p.suffix not in {".pyc", ".json"}]


def _flattened(path: Path) -> str:
    """The file with comment markers gone and lines joined, so a citation may wrap."""
    lines = [re.sub(r"^\s*#\s?", "", line) for line in path.read_text(errors="replace").splitlines()]
    return " ".join(" ".join(lines).split())


def _resolve(cited: str) -> Path:
    return REPO / cited if "/" in cited else next((p for p in (REPO / cited, REPO / "docs" / cited) if p.exists()),
                                                  REPO / cited)


def test_every_document_the_source_cites_exists():
    missing = []
    for path in _sources():
        for cited in set(CITED_FILES.findall(_flattened(path))):
            if not _resolve(cited).exists():
                missing.append(f"{path.relative_to(REPO)} cites {cited}")
    assert missing == []


def test_every_section_the_source_cites_exists():
    cited_any = False
    missing = []
    for path in _sources():
        for cited, heading in CITED_HEADINGS.findall(_flattened(path)):
            cited_any = True
            headings = [line.lstrip("#").strip() for line in _resolve(cited).read_text().splitlines()
                        if line.startswith("#")]
            if not any(h.startswith(heading) for h in headings):
                missing.append(f"{path.relative_to(REPO)} cites {cited} \"{heading}\"")
    assert cited_any and missing == []


def test_units_point_at_a_document_the_installation_ships():
    for unit in (REPO / "systemd").glob("*.service"):
        for doc in re.findall(r"^Documentation=file://\S*/([^/\s]+\.md)$", unit.read_text(), re.M):
            assert (REPO / "docs" / doc).is_file(), f"{unit.name} names {doc}"
