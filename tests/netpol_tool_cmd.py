"""`hubbletui` as a NetworkPolicy tool reads a cluster: hostNetwork pods judged as pods.

netpol-analyzer treats a hostNetwork pod like any other pod; Cilium gives its traffic the host identity and does
not enforce pod policies on it (the engine's default). The conformance tool only appends its own arguments to
the command it is given, so this wrapper inserts `--host-network-pods pod` after the subcommand.
"""

import sys

from hubbletui.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "trace":
        argv = [argv[0], "--host-network-pods", "pod", *argv[1:]]
    sys.exit(main(argv))
