"""``python -m actorkit_durable``: the command line (see ``_cli`` and docs/cli.md)."""

from ._cli import main

raise SystemExit(main())
