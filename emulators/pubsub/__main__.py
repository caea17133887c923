"""`python -m emulators.pubsub --host 127.0.0.1 --port 8085`: run until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from emulators.pubsub.server import start_emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.pubsub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8085, help="port to listen on; 0 picks a free one")
    parser.add_argument("--log-level", default="WARNING", help="python logging level (default WARNING)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        emulator = start_emulator(args.host, args.port)
    except OSError as error:
        print(f"pubsub emulator: {error}", file=sys.stderr)
        return 1
    print(f"Pub/Sub emulator ready: PUBSUB_EMULATOR_HOST={emulator.host_port}", flush=True)
    try:
        while not done.wait(1.0):  # wake periodically so signals are handled promptly
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
