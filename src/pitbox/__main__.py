"""`python -m pitbox`."""

from pitbox.cli import main

# Guarded: worker processes (telemetry/prepare.py, started with spawn) import this module again.
if __name__ == "__main__":
    main()
