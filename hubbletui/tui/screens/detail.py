"""Drop detail: the drop groups of a pod (or one row), each explained per layer, with the ranked fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from hubbletui.flows.store import Row, RowKey
from hubbletui.render.safe import printable
from hubbletui.tui.analysis import Analysis, analyse
from hubbletui.tui.explain_text import explanation_text
from hubbletui.tui.flowlines import ROW_COLUMNS, row_cells
from hubbletui.tui.screens.main import HEADER_ICON
from hubbletui.tui.widgets.keyed_table import KeyedTable
from hubbletui.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from hubbletui.tui.app import HubbleApp


class DropDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("w", "write_fix", "Write fix"),
        Binding("c", "copy_fix", "Copy"),
        Binding("f", "next_format", "Format"),
        Binding("d", "toggle_patch", "YAML/patch"),
        Binding("m", "mark_fix", "Mark"),
    ]

    def __init__(self, title: str, keys: list[RowKey]):
        super().__init__()
        self.title_text = title
        self.keys = keys
        self.analyses: dict[RowKey, Analysis] = {}
        self.current: RowKey | None = keys[0] if keys else None

    @property
    def hubble(self) -> HubbleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon=HEADER_ICON)
        yield Static(id="detail-title")
        yield KeyedTable(ROW_COLUMNS, id="groups")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="explanation"):
                yield Static(id="explanation-text")
            with Vertical(id="fixes"):
                yield Static(Text("Fixes", style="bold"), classes="section-title")
                yield Static(id="fix-view")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.status_bar = self.query_one(StatusBar)
        self.hubble.update_status()
        title = Text(printable(self.title_text), style="bold")
        title.append(f"  ·  {len(self.keys)} drop group{'s' if len(self.keys) != 1 else ''}", "dim")
        self.query_one("#detail-title", Static).update(title)
        self.refresh_groups()
        self.query_one("#groups", KeyedTable).focus()
        self.show_current()

    def rows(self) -> list[Row]:
        store = self.hubble.store
        return [store.rows[k] for k in self.keys if k in store.rows]

    def refresh_groups(self) -> None:
        table = self.query_one("#groups", KeyedTable)
        table.sync([(r.key.as_id(), r) for r in self.rows()], row_cells, lambda row: True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "groups" or event.row_key.value is None:
            return
        key = RowKey(*event.row_key.value.split("\x1f"))
        if key != self.current:
            self.current = key
            self.show_current()

    def show_current(self) -> None:
        key = self.current
        row = self.hubble.store.rows.get(key) if key is not None else None
        explanation = self.query_one("#explanation-text", Static)
        if row is None:
            explanation.update(Text("this drop group is no longer in the store (evicted at its cap)", style="dim"))
            return
        analysis = self.analyses.get(key)
        explanation.update(explanation_text(row, analysis))
        self.show_fixes(analysis)
        if analysis is None:
            self.run_worker(lambda: analyse(row, self.hubble.engine), name="analyse", group="analysis",
                            thread=True, exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "analysis":
            return
        if worker.state == WorkerState.SUCCESS and isinstance(worker.result, Analysis):
            self.analyses[worker.result.key] = worker.result
            if worker.result.key == self.current:
                self.show_current()
        elif worker.state == WorkerState.ERROR:
            self.query_one("#explanation-text", Static).update(
                Text(f"explaining failed: {printable(str(worker.error))}", style="red"))

    def show_fixes(self, analysis: Analysis | None) -> None:
        view = self.query_one("#fix-view", Static)
        if analysis is None:
            view.update(Text("…", style="dim"))
        elif analysis.trace is None and analysis.notes:
            view.update(Text(printable(analysis.notes[0]), style="yellow"))
        else:
            view.update(Text("fixes need the suggest module, which this build does not have yet", style="yellow"))

    # ---------------------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()
        self.hubble.redraw()

    def action_write_fix(self) -> None:
        self.notify("no fix to write for this drop group", severity="warning", timeout=3, markup=False)

    def action_copy_fix(self) -> None:
        self.notify("no fix to copy for this drop group", severity="warning", timeout=3, markup=False)

    def action_next_format(self) -> None:
        self.notify("no fix to show in another format", severity="warning", timeout=3, markup=False)

    def action_toggle_patch(self) -> None:
        self.notify("no fix to show as a patch", severity="warning", timeout=3, markup=False)

    def action_mark_fix(self) -> None:
        self.notify("no fix to mark", severity="warning", timeout=3, markup=False)
