"""Tracks: name, length, sector split points, corners once known."""
