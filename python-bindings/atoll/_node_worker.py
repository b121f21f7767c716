"""A node's Python worker process, started by a node agent as

    python -m atoll._node_worker --fd N --module PATH --module-hash H --module-name NAME

(the same arguments as ``atoll __worker``; an empty module: the job has no C++ module). It serves
the tasks, or the one actor, the node agent sends over socket ``N`` until the agent closes it, in
atoll's own worker loop; Python functions and classes arrive pickled, loaded on first use.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from atoll import _core, _runtime, _worker


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="atoll._node_worker", description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--module", default="")
    parser.add_argument("--module-hash", default="")
    parser.add_argument("--module-name", default="")
    args = parser.parse_args(argv)
    return _core.serve_worker(
        args.fd, args.module, args.module_hash, args.module_name, _worker, _runtime._attach_worker
    )


if __name__ == "__main__":
    sys.exit(main())
