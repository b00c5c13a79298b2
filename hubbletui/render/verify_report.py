"""`hubbletui verify`'s report: text for people, Markdown for a pull-request comment, JUnit XML for CI."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from hubbletui.render.markdown import md_text
from hubbletui.untrusted import printable

if TYPE_CHECKING:  # the command imports the verifier only when it runs
    from hubbletui.suggest.verify import Verification


def verify_text(result: Verification) -> str:
    lines = []
    for o in result.breaks:
        lines.append(f"BREAKS  {printable(o.text)}: {printable(o.why)}")  # names come from the recording
    for o in result.fixes:
        lines.append(f"FIXES   {printable(o.text)}")
    lines.append(f"{len(result.breaks)} would break, {len(result.fixes)} fixed, {len(result.kept)} unchanged"
                 + (f"; {result.connections_over_cap} connections over the cap not replayed"
                    if result.connections_over_cap else ""))
    return "\n".join(lines)


def verify_markdown(result: Verification) -> str:
    head = "## hubbletui verify: " + ("nothing breaks" if result.ok else f"{len(result.breaks)} connection(s) break")
    lines = [head, ""]
    if result.breaks:
        lines += ["| breaks | why |", "|---|---|"]
        lines += [f"| {md_text(o.text)} | {md_text(o.why)} |" for o in result.breaks]
        lines.append("")
    if result.fixes:
        lines += ["| fixes | dropped flows |", "|---|---|"]
        lines += [f"| {md_text(o.text)} | {o.flows} |" for o in result.fixes]
        lines.append("")
    lines.append(f"{len(result.kept)} recorded connection(s) unchanged.")
    return "\n".join(lines)


def verify_junit(result: Verification) -> bytes:
    cases = [(o, "break") for o in result.breaks] + [(o, "") for o in result.fixes + result.kept]
    suite = ET.Element("testsuite", name="hubbletui verify", tests=str(len(cases)), failures=str(len(result.breaks)))
    for outcome, kind in cases:
        case = ET.SubElement(suite, "testcase", classname="recorded-connections", name=outcome.text)
        if kind:
            ET.SubElement(case, "failure", message=f"would break: {outcome.why}").text = outcome.why
        elif outcome.before != outcome.after:
            ET.SubElement(case, "system-out").text = f"fixed: {outcome.before} before, {outcome.after} after"
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True) + b"\n"
