"""`hubbletui` reading a cluster as a NetworkPolicy tool does: hostNetwork pods judged as pods, egress named
ports resolved on the destination pod.

netpol-analyzer treats a hostNetwork pod like any other pod and resolves every named port on the destination;
Cilium gives a hostNetwork pod's traffic the host identity (no pod policy applies to it) and resolves egress named
ports cluster-wide (the engine's defaults). The conformance tool only appends its own arguments to the command
it is given, so this wrapper inserts the two flags after the subcommand.
"""

import sys

from hubbletui.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "trace":
        argv = [argv[0], "--host-network-pods", "pod", "--egress-named-ports", "destination", *argv[1:]]
    sys.exit(main(argv))
