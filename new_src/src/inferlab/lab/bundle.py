"""Results bundles: one file that brings an experiment's results home from a Kaggle/Colab GPU.

A bundle is a zip holding exactly:

    manifest.json      {"schema": "inferlab-bundle", "version": 1,
                        "experiment": {"id": 2, "title": "...", "folder": "0002-swiglu-fusion"},
                        "provider": "kaggle", "created": "<ISO-8601>", "environment": {fingerprint},
                        "duration_s": 41.5 or null, "results": ["results/000.json", ...]}
    results/NAME.json  one results payload each (`kind: experiment`: rows, fingerprint, ceilings)

`import_bundle` checks everything before it writes anything: the file's size, that it is a zip,
each member's name (no absolute path, no `..`, no backslash, no symbolic link, nothing but the
members above), each member's size (the declared size and the bytes actually inflated), that
every member is well-formed JSON, and the manifest's schema and version. A bundle whose SHA-256
was imported before is refused. Then each payload is saved in `results/` with its provenance
(provider, date, the bundle's hash) and the run's minutes go to the GPU budget.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferlab.lab.budget import (
    MAX_MINUTES,
    BudgetError,
    Entry,
    check_provider,
    log_time,
    read_ledger,
    read_prices,
)
from inferlab.lab.errors import LabError
from inferlab.lab.experiment_results import PAYLOAD_FORMAT, RESULT_KIND
from inferlab.lab.layout import Lab
from inferlab.lab.results import list_results, save_result

SCHEMA, VERSION = "inferlab-bundle", 1
MANIFEST = "manifest.json"
MAX_BUNDLE_BYTES = 50 * 2**20  # the file as downloaded
MAX_MEMBER_BYTES = 20 * 2**20  # one member, inflated
MAX_TOTAL_BYTES = 100 * 2**20  # all members, inflated (a zip bomb stops here)
MAX_MEMBERS = 64
_RESULT_MEMBER = re.compile(r"^results/[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.json$")
_FOLDER = re.compile(r"^\d+-[A-Za-z0-9._-]{1,100}$")


class BundleError(LabError):
    """A bundle that is refused; the message says why in one sentence, and nothing changed."""


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    sha256: str
    manifest: dict
    payloads: list[dict]


@dataclass(frozen=True, slots=True)
class ImportReport:
    bundle: Bundle
    saved: list[Path]
    budget_entry: Entry | None


def write_bundle(path: Path, experiment: dict, provider: str, payloads: list[dict], duration_s) -> Path:
    """Write the bundle of `payloads` to `path` (atomically), then read it back as import would."""
    manifest = {
        "schema": SCHEMA,
        "version": VERSION,
        "experiment": experiment,
        "provider": provider,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": payloads[0].get("environment") if payloads else None,
        "duration_s": duration_s,
        "results": [f"results/{i:03d}.json" for i in range(len(payloads))],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        for name, payload in zip(manifest["results"], payloads, strict=True):
            zf.writestr(name, json.dumps(payload, indent=2, ensure_ascii=False))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    read_bundle(path)  # never hand out a bundle that import would refuse
    return path


def read_bundle(path: Path) -> Bundle:
    """The checked contents of the bundle at `path`; BundleError (one sentence) if anything is off."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no bundle file at {path}")
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"{path.name} is larger than {MAX_BUNDLE_BYTES // 2**20} MB, the most a bundle may weigh"
        )
    data = path.read_bytes()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BundleError(f"{path.name} is not a zip file, so not an inferlab bundle") from None
    infos = [i for i in zf.infolist() if i.filename != "results/"]  # a folder entry some tools add
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"{path.name} has {len(infos)} members; a bundle holds at most {MAX_MEMBERS}")
    names = [_check_member(info, path.name) for info in infos]
    if len(set(names)) != len(names):
        raise BundleError(f"{path.name} holds two members with the same name")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        raise BundleError(f"{path.name} inflates to more than {MAX_TOTAL_BYTES // 2**20} MB")
    if MANIFEST not in names:
        raise BundleError(f"{path.name} has no {MANIFEST}, so it is not an inferlab bundle")
    members, total = {}, 0
    for info in infos:
        members[info.filename], size = _read_json(zf, info, path.name)
        total += size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(f"{path.name} inflates to more than {MAX_TOTAL_BYTES // 2**20} MB")
    manifest = _check_manifest(members[MANIFEST], path.name)
    if set(manifest["results"]) != set(names) - {MANIFEST}:
        raise BundleError(f"{path.name}: the manifest's results list does not match the members of the zip")
    payloads = [_check_payload(members[name], name, manifest) for name in manifest["results"]]
    return Bundle(path, hashlib.sha256(data).hexdigest(), manifest, payloads)


def import_bundle(lab: Lab, path: Path) -> ImportReport:
    """Check the bundle, refuse one imported before, then save its results and log its minutes."""
    bundle = read_bundle(path)
    previous = find_import(lab, bundle.sha256)
    if previous is not None:
        raise BundleError(f"{bundle.path.name} was imported before (into {previous.name}); nothing changed")
    manifest = bundle.manifest
    read_ledger(lab), read_prices(lab)  # a bad ledger or price table stops us before any write
    provenance = {
        "source": "bundle",
        "provider": manifest["provider"],
        "bundle_created": manifest["created"],
        "bundle_sha256": bundle.sha256,
        "bundle_file": bundle.path.name,
        "imported": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    saved = []
    for payload in bundle.payloads:
        merged = {**payload, "provenance": {**(payload.get("provenance") or {}), **provenance}}
        saved.append(save_result(lab, RESULT_KIND, merged))
    entry = None
    if manifest["duration_s"]:  # known duration: the GPU time goes to the budget
        minutes = min(max(manifest["duration_s"] / 60, 0.01), MAX_MINUTES)
        folder = manifest["experiment"]["folder"]
        entry = log_time(lab, manifest["provider"], minutes, experiment=folder, source="import",
                         note=f"bundle {bundle.path.name}", bundle_sha256=bundle.sha256)  # fmt: skip
    return ImportReport(bundle, saved, entry)


def find_import(lab: Lab, sha256: str) -> Path | None:
    """The first result imported from the bundle with this hash, or None."""
    for path in list_results(lab, RESULT_KIND):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # an unreadable result cannot be the duplicate; it is not ours to judge here
        if isinstance(payload, dict) and (payload.get("provenance") or {}).get("bundle_sha256") == sha256:
            return path
    return None


# ---------------------------------------------------------------- checks
def _check_member(info: zipfile.ZipInfo, bundle: str) -> str:
    name = info.filename
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(f"{bundle}: member {name!r} is an absolute or Windows path, which is not allowed")
    if ".." in name.split("/"):
        raise BundleError(f"{bundle}: member {name!r} climbs out of the bundle with '..'")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BundleError(f"{bundle}: member {name!r} is a symbolic link, which a bundle may not hold")
    if info.flag_bits & 0x1:
        raise BundleError(f"{bundle}: member {name!r} is encrypted")
    if name != MANIFEST and not _RESULT_MEMBER.match(name):
        raise BundleError(f"{bundle}: unexpected member {name!r}; only {MANIFEST} and results/*.json")
    if info.file_size > MAX_MEMBER_BYTES:
        raise BundleError(f"{bundle}: member {name!r} is larger than {MAX_MEMBER_BYTES // 2**20} MB")
    return name


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, bundle: str) -> tuple[object, int]:
    try:
        with zf.open(info) as f:
            data = f.read(MAX_MEMBER_BYTES + 1)  # never trust the declared size alone
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError) as e:
        raise BundleError(f"{bundle}: member {info.filename!r} cannot be read ({e})") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise BundleError(f"{bundle}: member {info.filename!r} is larger than {MAX_MEMBER_BYTES // 2**20} MB")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant), len(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"{bundle}: member {info.filename!r} is not well-formed JSON ({e})") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_manifest(m: object, bundle: str) -> dict:
    where = f"{bundle}: {MANIFEST}"
    if not isinstance(m, dict) or m.get("schema") != SCHEMA:
        raise BundleError(f"{where} does not declare schema {SCHEMA!r}, so it is not an inferlab bundle")
    version = m.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION or version < 1:
        raise BundleError(f"{where} has version {version!r}; this inferlab reads {VERSION}: upgrade inferlab")
    exp = m.get("experiment")
    if not (isinstance(exp, dict) and isinstance(exp.get("id"), int) and isinstance(exp.get("title"), str)):
        raise BundleError(f"{where}: 'experiment' must hold an integer id and a title")
    if not isinstance(exp.get("folder"), str) or not _FOLDER.match(exp["folder"]):
        raise BundleError(f"{where}: the experiment's folder must be a name like 0002-swiglu-fusion")
    try:
        check_provider(m.get("provider"), where)
    except BudgetError as e:
        raise BundleError(str(e)) from None
    try:
        datetime.fromisoformat(m.get("created"))
    except (TypeError, ValueError):
        raise BundleError(f"{where}: 'created' must be an ISO-8601 date") from None
    if not isinstance(m.get("environment"), dict):
        raise BundleError(f"{where}: 'environment' must hold the GPU's fingerprint")
    duration = m.get("duration_s")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise BundleError(f"{where}: 'duration_s' must be a number of seconds or null")
    if duration is not None and not 0 <= duration <= MAX_MINUTES * 60:
        raise BundleError(f"{where}: 'duration_s' of {duration} is outside 0 to one week")
    results = m.get("results")
    if not isinstance(results, list) or not results or not all(isinstance(r, str) for r in results):
        raise BundleError(f"{where}: 'results' must list the results members")
    return m


def _check_payload(payload: object, name: str, manifest: dict) -> dict:
    if not isinstance(payload, dict) or payload.get("kind") != RESULT_KIND:
        raise BundleError(f"bundle member {name!r} is not an experiment result (kind {RESULT_KIND!r})")
    version = payload.get("format")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= PAYLOAD_FORMAT:
        raise BundleError(f"bundle member {name!r} has result format {version!r}; this inferlab reads 1")
    rows = payload.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BundleError(f"bundle member {name!r} must hold a list of result rows")
    if not isinstance(payload.get("environment"), dict):
        raise BundleError(f"bundle member {name!r} has no environment fingerprint")
    if (payload.get("experiment") or {}).get("id") != manifest["experiment"]["id"]:
        raise BundleError(f"bundle member {name!r} belongs to another experiment than the manifest's")
    return payload
