"""PitBox Backend Engine: the hub between driver apps, team dashboards, coaching and voice."""

__version__ = "0.1.0"
