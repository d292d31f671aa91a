"""``python -m oneeye.commands.serve_gevent dashboard run …`` — the gevent entry point.

gevent must monkey-patch sockets, threads, ``ssl`` and ``select`` before any other
module imports them (redis, requests and psycopg then cooperate instead of
blocking every client), so ``oneeye dashboard run`` (async_mode gevent, the
default) re-executes the interpreter here rather than patching half-way through a
running CLI. It lives in ``oneeye.commands``, whose package imports nothing:
``python -m dashboard.…`` would import Flask (and ``ssl``) through the
``dashboard`` package before the first line here could run.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from oneeye.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["oneeye", *sys.argv[1:]]
    main()
