"""`edge-agent evidence verify` on real folders."""

from __future__ import annotations

from click.testing import CliRunner

from edge_agent.evidence.cli import evidence


def run(*args):
    return CliRunner().invoke(evidence, ["verify", *args])


def test_an_intact_chain_reaching_the_anchored_head_exits_zero(store, chain):
    result = run("--dir", str(store.root), "--head", chain[-1].sha256)
    assert result.exit_code == 0, result.output
    assert "ok: 4 manifest(s)" in result.output and "reaches the anchored manifest" in result.output
    assert "LOCAL-ONLY" not in result.output


def test_without_the_anchored_head_the_result_is_loudly_local_only(store, chain):
    """Issue 14 item 9: a chain checked against itself alone passed a removed newest manifest."""
    chain[-1].path.unlink()
    result = run("--dir", str(store.root))
    assert result.exit_code == 3, result.output
    assert "ok: 3 manifest(s), chain intact, LOCAL-ONLY" in result.stdout
    assert "LOCAL-ONLY: checked against this folder alone" in result.stderr
    assert "open crossing: crossings/X3/" in result.stdout  # its files, reported at once
    accepted = run("--dir", str(store.root), "--local-only")
    assert accepted.exit_code == 0 and "LOCAL-ONLY" in accepted.output
    anchored = run("--dir", str(store.root), "--head", chain[-1].sha256)
    assert anchored.exit_code == 1 and "anchored manifest" in anchored.stdout


def test_a_planted_file_fails_at_once(store, chain):
    (store.root / "crossings" / "X0" / "anpr" / "second.xml").write_bytes(b"<planted/>")
    result = run("--dir", str(store.root), "--head", chain[-1].sha256)
    assert result.exit_code == 1
    assert "unlisted file: crossings/X0/anpr/second.xml" in result.stdout


def test_each_problem_on_its_own_line_and_a_non_zero_exit(store, chain):
    (store.root / chain[0].files[0]["path"]).unlink()
    (store.root / chain[2].files[1]["path"]).write_bytes(b"changed")
    result = run("--dir", str(store.root))
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 2
    assert lines[0].startswith("missing file: crossings/X0/")
    assert lines[1].startswith("changed file: crossings/X2/")


def test_the_site_file_gives_the_folder(tmp_path, chain, store):
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "BCP1"\nregion = "WB"\ndata_dir = "{tmp_path}"\n\n[[lanes]]\nid = "L1"\n')
    assert store.root == tmp_path / "evidence"
    result = run("--config", str(site), "--local-only")
    assert result.exit_code == 0, result.output
    chain[1].path.unlink()
    result = run("--config", str(site), "--grace-s", "0")
    assert result.exit_code == 1
    assert "unsealed file: crossings/X1/" in result.stdout


def test_the_anchor_is_checked(store, chain):
    chain[-1].path.unlink()
    result = run("--dir", str(store.root), "--head", chain[-1].sha256)
    assert result.exit_code == 1
    assert "anchored manifest" in result.stdout


def test_one_of_dir_or_config_is_required(store):
    assert run().exit_code == 2
    assert run("--dir", str(store.root), "--config", "x.toml").exit_code == 2


def test_a_bad_site_file_exits_two(tmp_path):
    site = tmp_path / "bad.toml"
    site.write_text("[site]\nid = 'x'\n")
    result = run("--config", str(site))
    assert result.exit_code == 2
