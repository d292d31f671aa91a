"""``python -m dashboard.serve [oneeye options] dashboard run …`` — the gevent entry point.

gevent must monkey-patch sockets, threads and ``select`` before any other module
imports them (redis, requests and psycopg then cooperate instead of blocking
every client), so ``oneeye dashboard run --async-mode gevent`` re-executes the
interpreter here rather than patching half-way through a running CLI.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from oneeye.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["oneeye", *sys.argv[1:]]
    main()
