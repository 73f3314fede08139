"""The ``hwbench`` command. One module per subcommand; each adds its parser and its handler.

Exit status: one table for every command, in hwbench.errors (and EPILOG below).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback

from hwbench import __version__
from hwbench.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, HwbenchError
from hwbench.harness.loadgen import abandoned_calls
from hwbench.cli import audit as audit_cmd, compare as compare_cmd, export as export_cmd, \
    fleet as fleet_cmd, history as history_cmd, list as list_cmd, qualify as qualify_cmd, \
    report as report_cmd, run as run_cmd, show as show_cmd

EPILOG = """exit status (every command):
  0    success: the run is valid, every requirement passed, no regression
  1    internal error (results measured so far are still written)
  2    bad input: the message names the fix
  3    run: the run completed but is invalid (the reasons are in the summary);
       qualify: a run left a backend call stuck (no verdict; what ran is written)
  4    qualify: a requirement failed
  5    history: the newest run regressed, or the runs up to it drift
  6    audit: a compliance check failed (the evidence is in the result)
  7    fleet: some runs were lost or failed, or did not finish (hwbench fleet resume)
  8    compare: refused (--require-audit and a run without a passed audit)
  130  interrupted by Ctrl-C (results written, marked invalid)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        print(f"hwbench: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwbench", description="MLPerf-style hardware benchmark of real "
                     "inference workloads.", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hwbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (run_cmd, audit_cmd, list_cmd, show_cmd, compare_cmd, qualify_cmd, report_cmd,
                   history_cmd, export_cmd, fleet_cmd):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except HwbenchError as exc:
        print(f"hwbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hwbench: interrupted before measuring began; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("HWBENCH_DEBUG"):
            traceback.print_exc()
        print(f"hwbench: internal error: {type(exc).__name__}: {exc} "
              "(set HWBENCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def console() -> None:
    """The ``hwbench`` console script: ``main`` plus what only a whole process may do. Tests and
    the Python API call ``main`` / ``hwbench.run`` and never get here.

    A second Ctrl-C ends the process at once with 130. When a backend call was abandoned (a
    thread is still inside it), the process ends with ``os._exit`` once its output is flushed:
    finalising the interpreter under a thread that holds an interpreter thread state is unsafe,
    and waiting for the call is what abandoning it avoids."""
    _second_ctrl_c_exits()
    code = main()
    if abandoned_calls():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _second_ctrl_c_exits() -> None:
    """The first Ctrl-C ends the command gracefully (a KeyboardInterrupt, as always: the run is
    written, marked interrupted). The second ends the process now, even while the main thread is
    inside native code that never returns to Python, where a Python signal handler would never
    run: the interpreter's C-level handler writes each signal's number to the wakeup fd as it
    arrives, and a thread counts them."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # Ctrl-C is ignored or handled by whoever started us: leave it to them
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def watch() -> None:
        seen = 0
        while True:
            seen += os.read(read_fd, 64).count(signal.SIGINT)
            if seen >= 2:
                print("\nhwbench: interrupted again: exiting now", file=sys.stderr, flush=True)
                os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="hwbench-second-ctrl-c", daemon=True).start()


if __name__ == "__main__":  # pragma: no cover
    console()
