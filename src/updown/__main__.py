"""``python -m updown``."""

from updown.cli import main

main()
