"""Named errors that users of campaignlake handle or read."""

from __future__ import annotations


class CampaignlakeError(Exception):
    """Base class of every error campaignlake raises on purpose."""


class ConfigError(CampaignlakeError):
    """A configuration file is missing, malformed or invalid; the message names file and key."""


class TableError(CampaignlakeError):
    """A table operation cannot be carried out as asked (missing table, schema mismatch, …)."""


class TableNotFoundError(TableError):
    """The table does not exist at the configured location."""


class SchemaMismatchError(TableError):
    """The data written does not have the table's schema."""


class ReplaceWhereViolationError(TableError):
    """Rows written with ``overwrite_where`` do not all match the predicate."""


class DuplicateKeyError(TableError):
    """The source of an upsert holds more than one row for the same key."""


class CommitConflictError(TableError):
    """A concurrent writer kept winning; the commit was retried and gave up."""


class UnsafeStorageError(TableError):
    """delta-rs was asked to commit to object storage without a safe commit mode."""


class SecretMissingError(CampaignlakeError):
    """A secret (the PII HMAC key) is not available in this environment."""


class RejectRateExceededError(CampaignlakeError):
    """An ingestion batch rejected more records than the configured threshold allows."""


class InputError(CampaignlakeError):
    """The landing input cannot be processed (missing directory, unreadable file)."""


class ModelNotFoundError(CampaignlakeError):
    """No trained model (or not the pinned version) exists where the conf says."""


class TrainingDataError(CampaignlakeError):
    """The campaign history cannot train a model (no labelled contacts, a single class, …)."""


class MissingInputError(CampaignlakeError):
    """A table a job reads has not been written yet; the message says which job writes it."""
