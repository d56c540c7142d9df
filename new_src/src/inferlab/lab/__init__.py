"""The learner's lab on disk: records, experiments, results and reviews in plain files.

Markdown/YAML/JSON files are the truth; `index.sqlite` is derived and can be rebuilt at any
time (`reindex`). Writes are atomic and never overwrite the learner's words without a backup.
"""

from inferlab.lab.atomic import atomic_write_text
from inferlab.lab.errors import FrontMatterError, LabError
from inferlab.lab.index import reindex
from inferlab.lab.layout import Lab, default_lab_path, init_lab
from inferlab.lab.records import (
    STATUSES,
    Record,
    list_records,
    load_record,
    new_record,
    update_record,
)
from inferlab.lab.results import list_results, save_result

__all__ = [
    "STATUSES",
    "FrontMatterError",
    "Lab",
    "LabError",
    "Record",
    "atomic_write_text",
    "default_lab_path",
    "init_lab",
    "list_records",
    "list_results",
    "load_record",
    "new_record",
    "reindex",
    "save_result",
    "update_record",
]
