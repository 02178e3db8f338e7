"""`python -m pitbox`."""

from pitbox.cli import main

main()
