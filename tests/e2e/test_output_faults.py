"""Output hygiene: a full or closed stdout ends with one line on stderr and the documented exit code (never a
traceback), and no output form lets a control character or a line/paragraph separator from the input through."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cli_run import run_cli
from paths import FIXTURES, ROOT
from hubbletui.untrusted import json_safe, printable

STARWARS = str(FIXTURES / "clusters" / "starwars")
DEMO_FLOWS = str(ROOT / "hubbletui" / "demo" / "flows.jsonl")
DENIED = str(FIXTURES / "flows" / "policy_denied_ingress.jsonl")

# every command and output form that writes data to stdout
FORMS = [("observe", "-o", o, "--input-file", DEMO_FLOWS) for o in ("compact", "table", "dict", "json", "jsonpb",
                                                                      "wide")]
FORMS += [("explain", "--cluster", STARWARS, "--input-file", DENIED, "-o", o) for o in ("text", "json", "md")]
FORMS += [("suggest", "--cluster", STARWARS, "--input-file", DENIED, "-o", o) for o in ("yaml", "json", "md",
                                                                                         "script")]
FORMS += [("trace", "--cluster", STARWARS, "--src", "default/xwing", "--dst", "default/deathstar-7848d6c4d5-th9v2",
           "--dport", "80/tcp", "-o", o) for o in ("text", "json")]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "HUBBLE_SERVER")}
    return {**env, "TZ": "UTC"}


@pytest.mark.parametrize("args", FORMS, ids=lambda a: f"{a[0]}-{a[a.index('-o') + 1]}")
def test_a_full_stdout_is_one_line_and_exit_1(args):
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "hubbletui", *args], stdout=full, stderr=subprocess.PIPE,
                              env=_env(), cwd=ROOT, timeout=60)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 1, err
    assert err.splitlines()[-1] == "hubbletui: cannot write output: No space left on device", err
    assert err.count("cannot write") == 1


@pytest.mark.parametrize("args", FORMS, ids=lambda a: f"{a[0]}-{a[a.index('-o') + 1]}")
def test_a_closed_pipe_ends_quietly(args):
    # `| head` having read enough: the README says it ends quietly, exit 0 (or the command's own code)
    proc = subprocess.Popen([sys.executable, "-m", "hubbletui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 3), err
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err


def test_a_closed_stdout_descriptor_is_one_line():
    proc = subprocess.run(f"{sys.executable} -m hubbletui observe -o compact --input-file {DEMO_FLOWS} >&-",
                          shell=True, stderr=subprocess.PIPE, env=_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.decode() == "hubbletui: cannot write output: stdout is closed\n"


# ---------------------------------------------------------------------------------------------------------
# hostile characters

HOSTILE = "a\u2028b\u2029c\u009b31md\x1b[2Je\x07f\x7fg\u0085h\rі"  # CSI as one C1 character, NEL, DEL, ESC


def _unsafe(data: bytes) -> set[str]:
    return {hex(ord(c)) for c in data.decode("utf-8") if c not in "\n\t" and (
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029")}


@pytest.fixture(scope="module")
def hostile_flows(tmp_path_factory):
    out = []
    for raw in open(DENIED, "rb"):
        obj = json.loads(raw)
        f = obj["flow"]
        f["source"]["labels"] = [*f["source"].get("labels", []), f"k8s:evil={HOSTILE}"]
        f["source"]["pod_name"] = f["source"]["pod_name"] + HOSTILE
        f["node_name"] = "node" + HOSTILE
        f["destination_names"] = [f"d{HOSTILE}.example"]
        f["Summary"] = HOSTILE
        out.append(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
    path = tmp_path_factory.mktemp("hostile") / "flows.jsonl"
    path.write_bytes(b"".join(out))
    return str(path)


@pytest.mark.parametrize("form", [a for a in FORMS if a[0] in ("observe", "explain", "suggest")],
                         ids=lambda a: f"{a[0]}-{a[a.index('-o') + 1]}")
def test_no_output_form_lets_controls_or_separators_through(form, hostile_flows):
    args = [hostile_flows if a in (DEMO_FLOWS, DENIED) else a for a in form]
    proc = run_cli(*args)
    assert proc.returncode in (0, 3), proc.stderr.decode()
    assert _unsafe(proc.stdout) == set()
    assert _unsafe(proc.stderr) == set()
    output = args[args.index("-o") + 1]
    if args[0] == "observe" and output in ("json", "jsonpb"):
        # escaped, not lost: the JSON still holds the very characters the input had
        flows = [json.loads(x)["flow"] for x in proc.stdout.decode().splitlines()]
        assert flows and all(f["Summary"] == HOSTILE for f in flows)


def test_printable_and_json_safe():
    assert printable("x\u2028y\u2029z\u009b\x1b\x7f") == "x\\u2028y\\u2029z\\x9b\\x1b\\x7f"
    assert printable("plain ünïcode ✓") == "plain ünïcode ✓"
    raw = json.dumps({"k": HOSTILE + "©é"}, ensure_ascii=False).encode()
    safe = json_safe(raw)
    assert _unsafe(safe) == set() and json.loads(safe) == json.loads(raw)
    assert "©é".encode() in safe  # other non-ASCII stays as it was
