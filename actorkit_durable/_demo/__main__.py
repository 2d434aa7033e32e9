"""``python -m actorkit_durable._demo``: the demo without the command line around it."""

import sys

from . import main

sys.exit(main(sys.argv[1:]))
