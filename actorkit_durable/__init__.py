"""actorkit_durable: durable processes and persistent actors that outlive the program.

This package is a placeholder in this release: its store, codec, persistent actors and
durable processes land in the following releases (see CHANGELOG.md).
"""

__version__ = "0.1.0"
