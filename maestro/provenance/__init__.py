"""Provenance: what every job records (:mod:`~maestro.provenance.record`), the audit of a
table cell back to its raw files (``audit*``), and the DVC bridge (``dvcio``, ``dvc_sync``).

The record API is re-exported here: ``from maestro import provenance; provenance.record(...)``.
"""

from maestro.provenance.record import (
    OUTPUT_FILES,
    PACKAGES,
    config_hash,
    file_sha256,
    git_state,
    output_hashes,
    package_versions,
    path_hash,
    record,
    write,
)

__all__ = [
    "OUTPUT_FILES",
    "PACKAGES",
    "config_hash",
    "file_sha256",
    "git_state",
    "output_hashes",
    "package_versions",
    "path_hash",
    "record",
    "write",
]
