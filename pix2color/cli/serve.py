"""`pix2color serve`: the colorize page and API (`--model`), or the Turing-test poll (`--poll`).

    pix2color serve --model runs/sample                        # http://127.0.0.1:8000/
    pix2color serve --poll poll --host 0.0.0.0 --port 8000     # friends on the local network

A poll is served alone: a participant who could colorize a trial's photo with the poll's model
would get its colorization back, and so the answer.
"""

from __future__ import annotations

import secrets
import signal
import socket
import sys
from argparse import ArgumentTypeError
from urllib.parse import quote

from pix2color.cli import ArgumentParser, RawHelpFormatter, command, port_number, positive_int
from pix2color.colorizing.loading import MODES
from pix2color.errors import ServerStopped

PROG = "pix2color serve"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=RawHelpFormatter)
    parser.add_argument("--model", default=None, help="run folder, .keras generator or SavedModel: the colorize page")
    parser.add_argument("--poll", default=None, help="a poll folder from `pix2color turing build`")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to let other machines in (a poll with friends)")
    parser.add_argument("--port", type=port_number, default=8000, help="0: any free port (the one chosen is printed)")
    parser.add_argument("--allowed-hosts", type=allowed_hosts, default=None, metavar="NAMES",
                        help="more names the server is reached by, comma-separated (poll.example.org, "
                             "*.example.org); localhost, the --host address and, with --host 0.0.0.0, this "
                             "machine's addresses and name are always answered, any other Host gets a 400")
    parser.add_argument("--mode", choices=MODES, default="deterministic", help="the colorize page's default mode")
    parser.add_argument("--admin-token", default=None, help="opens the poll's results (default: a random one, printed)")
    parser.add_argument("--max-upload-mb", type=positive_int, default=25, help="largest upload accepted")
    parser.add_argument("--max-pixels", type=positive_int, default=50_000_000, help="largest photo accepted")
    parser.add_argument("--queue", type=positive_int, default=8, help="colorize requests that may wait while one runs")
    parser.add_argument("--new-participants-per-minute", type=positive_int, default=120, metavar="N",
                        help="new poll participants one address may make in a minute (a script cannot fill the disk)")
    return parser


def allowed_hosts(text: str) -> list[str]:
    from pix2color.web.guards import host_patterns

    try:
        return host_patterns(text)
    except ValueError as error:
        raise ArgumentTypeError(str(error)) from None


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model and not args.poll:
        parser.error("give --model (the colorize page) or --poll (a Turing test)")
    if args.model and args.poll:
        parser.error("--model and --poll: a poll is served alone, without the colorize page: a participant who "
                     "reached a colorizer with the poll's model could colorize a trial's photo and compare")
    if args.model:  # a poll alone needs no TensorFlow, and starts in about a second
        from pix2color.quiet import import_quietly

        import_quietly()
        from pix2color.colorizing.loading import load_network
    import uvicorn

    from pix2color.poll.storage import Poll, PollError
    from pix2color.web.app import Limits, create_app
    from pix2color.web.guards import allowed_host_names
    from pix2color.web.server import server_config

    try:
        networks = {mode: load_network(args.model, mode, log=print if mode == MODES[0] else None)
                    for mode in MODES} if args.model else None
        poll = Poll(args.poll) if args.poll else None
    except (ValueError, OSError, PollError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    token = args.admin_token or secrets.token_urlsafe(18)
    try:
        listening = listen(args.host, args.port)
    except OSError as error:
        print(f"{PROG}: error: cannot listen on --host {args.host} --port {args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    limits = Limits(upload_bytes=args.max_upload_mb * 2**20, pixels=args.max_pixels, queue=args.queue,
                    new_participants=args.new_participants_per_minute)
    app = create_app(networks, poll, token, limits, args.mode, allowed_host_names(args.host, args.allowed_hosts or []))
    port = listening.getsockname()[1]  # --port 0: the one the system chose
    say_addresses(args, port, networks, poll, token)
    server = uvicorn.Server(server_config(app))
    signal_number = serve_until_signal(server, listening)
    if signal_number == signal.SIGINT:
        raise KeyboardInterrupt  # the command's usual Ctrl-C line and status
    print(f"{PROG}: stopped by {signal.Signals(signal_number).name}", file=sys.stderr)
    return 128 + signal_number


def say_addresses(args, port: int, networks: dict | None, poll, token: str) -> None:
    """The addresses to open (the admin's with its token), and a warning for each option that lets more
    clients reach the server than this machine's own."""
    from pix2color.web.guards import EVERY_INTERFACE, host_name

    shown_host = "localhost" if args.host == "127.0.0.1" or args.host in EVERY_INTERFACE else host_name(args.host)
    if networks:
        print(f"colorize page: http://{shown_host}:{port}/   API: POST /api/colorize", flush=True)
    if poll:
        print(f"poll ({poll.protocol}, {poll.pair_count} pairs): http://{shown_host}:{port}/poll", flush=True)
        print(f"results (admin): http://{shown_host}:{port}/admin?token={quote(token, safe='')}", flush=True)
    if args.host in EVERY_INTERFACE:
        print("listening on every network interface: anyone on this network can reach the server", flush=True)
    if "*" in (args.allowed_hosts or []):
        print("--allowed-hosts '*': any Host name is served, so a page of another site can reach this server "
              "through a DNS name it controls (DNS rebinding); name the hosts instead", flush=True)

def listen(host: str, port: int) -> socket.socket:
    """A listening socket (bound here, so that a busy port or a bad host is one line, and --port 0
    can be told)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def serve_until_signal(server, listening: socket.socket) -> int:
    """Run uvicorn until SIGINT or SIGTERM; returns which. uvicorn shuts down gracefully on its
    own handlers, then raises the signal again for the handlers it found: ours, which end the run."""

    def stop(signal_number, frame):
        raise ServerStopped(signal_number)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[listening])
    except ServerStopped as stopped:
        return stopped.signal_number
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return signal.SIGTERM  # uvicorn returned on its own (it does so only when asked to stop)
