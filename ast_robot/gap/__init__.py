"""Reality-gap analysis: episode records, sim-vs-real statistics, system identification, retuning, reports."""

from ast_robot.gap.outcomes import (
    SCHEMA_VERSION,
    ContactSummary,
    EpisodeRecord,
    RecordError,
    from_json,
    read_records,
    to_json,
    write_records,
)

__all__ = ["SCHEMA_VERSION", "ContactSummary", "EpisodeRecord", "RecordError", "from_json", "read_records",
           "to_json", "write_records"]  # fmt: skip
