"""Policy view of a pod: what selects it, and what it may reach and be reached by."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from hubbletui.untrusted import printable
from hubbletui.diagnose.analysis import NO_CLUSTER
from hubbletui.tui.policy_text import policy_view
from hubbletui.tui.screens.base import HubbleScreen

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.flows.model import Endpoint


class PolicyScreen(HubbleScreen):
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, ref: str, endpoint: Endpoint | None = None):
        super().__init__()
        self.ref = ref
        self.endpoint = endpoint

    def body(self) -> ComposeResult:
        with VerticalScroll(id="policy-scroll"):
            yield Static(id="policy-body")

    def on_mount(self) -> None:
        self.hubble.update_status()
        body = self.query_one("#policy-body", Static)
        title = Text(f"policy view of {printable(self.ref)}\n\n", style="bold")
        if self.hubble.engine is None:
            body.update(title + Text(NO_CLUSTER, style="yellow"))
            return
        body.update(title + Text("reading the policy graph…", style="italic dim"))
        self.run_worker(lambda: policy_view(self.hubble.policy_graph(), self.ref, self.endpoint), name="policy",
                        group="policy",
                        thread=True, exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "policy":
            return
        body = self.query_one("#policy-body", Static)
        if event.state == WorkerState.SUCCESS:
            body.update(event.worker.result)
        elif event.state == WorkerState.ERROR:
            body.update(Text(f"policy view of {printable(self.ref)}: {printable(str(event.worker.error))}",
                             style="red"))

    def action_back(self) -> None:
        self.app.pop_screen()
        self.hubble.redraw()
