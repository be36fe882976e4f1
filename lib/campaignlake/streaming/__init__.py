"""Structured Streaming: clickstream ingested as it arrives, exactly once into bronze."""
