"""MISSION.md changes: first sight is no change; a change is prompted for by `inferlab next` and
`inferlab lab mission` (naming the git revision in a repository) until a record links
`mission:<hash>`; then the prompt stops."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cli_run import run as run_cli
from inferlab.lab import Lab, list_records, new_record
from inferlab.lab.mission import check_mission, mission_prompt


def run(monkeypatch, capsys, *args):
    code, out, err = run_cli(monkeypatch, capsys, *args)
    return code, " ".join(out.split()), err


def prompt(lab: Lab) -> str | None:
    return mission_prompt(lab, list_records(lab)[0])


def test_a_change_is_prompted_for_until_a_record_says_why(monkeypatch, capsys):
    lab = Lab.open(None)
    assert prompt(lab) is None  # no MISSION.md: nothing to say
    (lab.root / "MISSION.md").write_text("# Mission\n\nWrite fast kernels.\n")
    assert prompt(lab) is None  # first sight is remembered, not a change
    assert (lab.root / ".inferlab" / "mission.json").is_file()
    (lab.root / "MISSION.md").write_text("# Mission\n\nWrite fast kernels, then serve models.\n")
    check = check_mission(lab, [])
    assert check.changed and len(check.short_hash) == 12
    code, out, _ = run(monkeypatch, capsys, "next")
    assert (
        code == 0 and f"Next: MISSION.md changed since {check.seen_at[:10]}: write a learning record" in out
    )
    assert f"--link mission:{check.short_hash}" in out
    code, out, _ = run(monkeypatch, capsys, "lab", "mission")
    assert code == 0 and out.startswith("MISSION.md changed since")

    new_record(lab, "An unrelated record", links=["mission:0000000"])
    assert prompt(lab) is not None
    new_record(lab, "Why my mission now includes serving", links=[f"mission:{check.hash[:7]}"])
    code, out, _ = run(monkeypatch, capsys, "lab", "mission")
    assert code == 0 and "record 2 says why" in out
    assert prompt(lab) is None
    code, out, _ = run(monkeypatch, capsys, "lab", "mission")
    assert "MISSION.md unchanged since" in out and check.short_hash in out
    code, out, _ = run(monkeypatch, capsys, "next")
    assert "MISSION.md changed" not in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_in_a_git_repository_the_prompt_names_the_revision(tmp_path):
    lab = Lab.open(None)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(lab.root), *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q")
    (lab.root / "MISSION.md").write_text("one\n")
    git("add", "MISSION.md")
    git("commit", "-q", "-m", "mission")
    assert prompt(lab) is None
    (lab.root / "MISSION.md").write_text("two\n")
    git("commit", "-q", "-am", "a new mission")
    revision = git("log", "-1", "--format=%h", "--", "MISSION.md")
    assert f"MISSION.md (last committed in {revision}) changed since" in prompt(lab)


def test_adoption_remembers_the_mission_it_found(monkeypatch, capsys, tmp_path):
    from test_lab_adopt import make_teach_lab

    teach = make_teach_lab(tmp_path / "teach")
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    lab = Lab.open(teach)
    assert prompt(lab) is None
    (teach / "MISSION.md").write_text("# Mission\n\nA new direction.\n")
    assert prompt(lab).startswith("MISSION.md changed since")
