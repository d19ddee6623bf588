"""Episode records: the schema, its JSON / folder / bag forms (one writer and one reader each) and the
outcome stream's QoS. Imported by deploy, twin, gap and the ROS package; imports none of them (ROS names:
:class:`ast_robot.config.deploy.RosNames`)."""

from ast_robot.records.folder import RECORDS_FILE, read_records, write_records
from ast_robot.records.load import load_episodes
from ast_robot.records.schema import (
           SCHEMA_VERSION,
           ContactSummary,
           EpisodeRecord,
           PickOutcome,
           RecordError,
           from_json,
           to_json,
)

__all__ = ["RECORDS_FILE", "SCHEMA_VERSION", "ContactSummary", "EpisodeRecord", "PickOutcome", "RecordError", "from_json",
           "load_episodes", "read_records", "to_json", "write_records"]  # fmt: skip
