"""Ingestion: landing files to checked rows to bronze and silver tables, with quarantine."""
