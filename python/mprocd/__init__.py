"""mprocd's Python side: supervised worker pools that run jobs.

For now this package holds the program side of a program pool: run
``python3 -m mprocd.worker MODULE...`` as a pool's program, or call
``mprocd.worker.serve({"name": func})`` from a script, and mprocd hands the
program one call after another (DESIGN.md sections 11 and 13). The client
library is being built (issue 17).
"""

__version__ = "0.1.0"
