"""Results bundles: a good one is merged with its provenance; every bad one is refused in one
sentence and leaves the lab byte for byte as it was."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from inferlab.lab import Lab, LabError, list_results
from inferlab.lab import bundle as bundle_module
from inferlab.lab.budget import ledger_path, log_time, read_ledger
from inferlab.lab.bundle import MANIFEST, BundleError, import_bundle, read_bundle, write_bundle

EXPERIMENT = {
    "id": 2,
    "title": "SwiGLU: one pass versus three",
    "folder": "0002-swiglu-one-pass-versus-three",
}
ENVIRONMENT = {"gpu": {"name": "Tesla T4", "capability": "7.5"}, "torch": "2.6.0", "git_revision": "abc"}
ROW = {"kernel": "swiglu", "shape": "llama-3-8b:8192x14336", "provider": "inferlab", "status": "ok"}


def _payload() -> dict:
    provenance = {"source": "run", "provider": "kaggle"}
    return {"kind": "experiment", "format": 1, "experiment": EXPERIMENT, "environment": ENVIRONMENT,
            "rows": [ROW], "duration_s": 42.0, "provenance": provenance}  # fmt: skip


def _manifest(**changes) -> dict:
    manifest = {
        "schema": "inferlab-bundle", "version": 1, "experiment": EXPERIMENT, "provider": "kaggle",
        "created": "2026-11-26T12:00:00+00:00", "environment": ENVIRONMENT, "duration_s": 42.0,
        "results": ["results/000.json"],
    }  # fmt: skip
    return {**manifest, **changes}


def _zip(path: Path, members: dict[str, bytes | str], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == symlink:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return path


def _good_members(**manifest_changes) -> dict[str, str]:
    return {MANIFEST: json.dumps(_manifest(**manifest_changes)), "results/000.json": json.dumps(_payload())}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def lab() -> Lab:
    lab = Lab.open()
    log_time(lab, "kaggle", 5)  # a ledger with one entry already
    return lab


def test_a_written_bundle_is_imported_with_fingerprint_and_provenance(lab, tmp_path):
    path = write_bundle(tmp_path / "b.zip", EXPERIMENT, "kaggle", [_payload()], 42.0)
    bundle = read_bundle(path)
    assert bundle.manifest["schema"] == "inferlab-bundle" and bundle.manifest["version"] == 1
    assert bundle.manifest["environment"] == ENVIRONMENT and len(bundle.sha256) == 64
    report = import_bundle(lab, path)
    (saved,) = report.saved
    assert list_results(lab, "experiment") == [saved]
    stored = json.loads(saved.read_text())
    assert stored["environment"] == ENVIRONMENT and stored["rows"] == [ROW]
    provenance = stored["provenance"]
    assert provenance["source"] == "bundle" and provenance["provider"] == "kaggle"
    assert provenance["bundle_sha256"] == bundle.sha256 and provenance["bundle_file"] == "b.zip"
    entry = read_ledger(lab)[-1]
    assert entry == report.budget_entry
    assert (entry.provider, entry.minutes, entry.source) == ("kaggle", 0.7, "import")
    assert entry.experiment == EXPERIMENT["folder"] and entry.bundle_sha256 == bundle.sha256


def test_a_bundle_without_a_duration_logs_no_time(lab, tmp_path):
    path = _zip(tmp_path / "b.zip", _good_members(duration_s=None))
    assert import_bundle(lab, path).budget_entry is None
    assert len(read_ledger(lab)) == 1


def _refused(lab: Lab, path: Path, message: str) -> None:
    before = _snapshot(lab.root)
    with pytest.raises(BundleError, match=message) as info:
        import_bundle(lab, path)
    assert "\n" not in str(info.value)  # one sentence
    assert _snapshot(lab.root) == before


def test_a_duplicate_is_refused_and_changes_nothing(lab, tmp_path):
    path = write_bundle(tmp_path / "b.zip", EXPERIMENT, "kaggle", [_payload()], 42.0)
    import_bundle(lab, path)
    copy = tmp_path / "renamed.zip"
    copy.write_bytes(path.read_bytes())
    _refused(lab, copy, "renamed.zip was imported before")


@pytest.mark.parametrize(
    "members, message",
    [
        ({MANIFEST: "{not json", "results/000.json": "{}"}, "member 'manifest.json' is not well-formed JSON"),
        ({**_good_members(), "results/000.json": '{"rows": [NaN]}'}, "000.json' is not well-formed JSON"),
        ({MANIFEST: json.dumps(_manifest(schema="other"))}, "does not declare schema 'inferlab-bundle'"),
        ({MANIFEST: json.dumps(_manifest(version=2)), "results/000.json": "{}"}, "has version 2"),
        ({**_good_members(provider="My Cloud")}, "provider 'My Cloud'"),
        ({**_good_members(), "../x.json": "{}"}, r"member '../x.json' climbs out of the bundle"),
        ({**_good_members(), "results/../../x.json": "{}"}, "climbs out of the bundle"),
        ({**_good_members(), "/etc/passwd": "{}"}, "'/etc/passwd' is an absolute or Windows path"),
        ({**_good_members(), "C:/x.json": "{}"}, "absolute or Windows path"),
        ({**_good_members(), "notes.txt": "hi"}, "unexpected member 'notes.txt'"),
        ({"results/000.json": json.dumps(_payload())}, "has no manifest.json"),
        ({**_good_members(), "results/001.json": json.dumps(_payload())}, "results list does not match"),
        (
            {**_good_members(), "results/000.json": json.dumps({**_payload(), "kind": "bench"})},
            "not an experiment",
        ),
        (
            {**_good_members(), "results/000.json": json.dumps({**_payload(), "environment": None})},
            "fingerprint",
        ),
    ],
)
def test_malformed_bundles_are_refused_and_change_nothing(lab, tmp_path, members, message):
    _refused(lab, _zip(tmp_path / "bad.zip", members), message)


def test_symlinks_not_zips_and_damaged_zips_are_refused(lab, tmp_path):
    link = _zip(
        tmp_path / "link.zip", {**_good_members(), "results/001.json": "/etc/passwd"}, "results/001.json"
    )
    _refused(lab, link, "'results/001.json' is a symbolic link")
    not_zip = tmp_path / "x.zip"
    not_zip.write_text('{"schema": "inferlab-bundle"}')
    _refused(lab, not_zip, "x.zip is not a zip file")
    good = write_bundle(tmp_path / "good.zip", EXPERIMENT, "kaggle", [_payload()], 42.0).read_bytes()
    damaged = tmp_path / "damaged.zip"
    middle = len(good) // 3  # inside the first member's compressed bytes
    damaged.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :])
    _refused(lab, damaged, "damaged.zip")
    _refused(lab, tmp_path / "missing.zip", "no bundle file at")


def test_oversized_bundles_and_members_are_refused(lab, tmp_path, monkeypatch):
    huge = tmp_path / "huge.zip"
    with huge.open("wb") as f:
        f.truncate(bundle_module.MAX_BUNDLE_BYTES + 1)  # sparse: the size is refused before reading
    _refused(lab, huge, "larger than 50 MB")
    payload = {**_payload(), "rows": [ROW] * 5000}
    big = _zip(tmp_path / "big.zip", {**_good_members(), "results/000.json": json.dumps(payload)})
    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 100_000)
    _refused(lab, big, "'results/000.json' is larger than")
    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 20 * 2**20)
    monkeypatch.setattr(bundle_module, "MAX_TOTAL_BYTES", 100_000)
    _refused(lab, big, "inflates to more than")


def test_a_corrupt_ledger_stops_the_import_before_any_result_is_written(lab, tmp_path):
    path = write_bundle(tmp_path / "b.zip", EXPERIMENT, "kaggle", [_payload()], 42.0)
    ledger_path(lab).write_text("{broken\n")
    before = _snapshot(lab.root)
    with pytest.raises(LabError, match="budget.jsonl:1: not valid JSON"):
        import_bundle(lab, path)
    assert _snapshot(lab.root) == before
