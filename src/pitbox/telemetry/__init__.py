"""Telemetry: the canonical channel catalogue, ingest and storage of samples."""
