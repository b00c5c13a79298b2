"""Drop detail: the drop groups of a pod (or one row), each explained per layer, with the ranked checked fixes.

Left: what Hubble saw and why, layer by layer. Right: the fixes (best first) and the selected one as YAML or
as a patch. `w` writes it (atomically), `c` copies it, `f` asks for it in another format, `m` marks it for
`hubbletui pick`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.store import WOULD_DROP, Row, RowKey
from hubbletui.files import write_atomic
from hubbletui.untrusted import printable
from hubbletui.diagnose.analysis import Evidence
from hubbletui.suggest.drill_in import FORMATS, DrillIn, drill_in
from hubbletui.tui.cells import Num, cell
from hubbletui.tui.explain_text import explanation_text
from hubbletui.tui.fixes import default_path, fix_yaml, patch_text
from hubbletui.tui.flowlines import ROW_COLUMNS, row_cells
from hubbletui.tui.screens.write_fix import WriteFixScreen
from hubbletui.tui.widgets.keyed_table import KeyedTable
from hubbletui.tui.screens.base import HubbleScreen

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.suggest.model import Suggestion

FIX_COLUMNS = [("rank", "#", 2), ("mark", "", 1), ("kind", "KIND", 12), ("blast", "NEW", 3), ("fix", "FIX", 200)]


class DropDetailScreen(HubbleScreen):
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
        self.analyses: dict[tuple[RowKey, str], DrillIn] = {}
        self.current: RowKey | None = keys[0] if keys else None
        self.fmt: str | None = None  # None until the engine names its default
        self.show_patch = False
        self.selected_fix = 0

    def body(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield KeyedTable(ROW_COLUMNS, id="groups")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="explanation"):
                yield Static(id="explanation-text")
            with Vertical(id="fixes"):
                yield Static(id="fixes-title", classes="section-title")
                yield KeyedTable(FIX_COLUMNS, id="suggestions")
                with VerticalScroll(id="fix-scroll"):
                    yield Static(id="fix-view")

    def on_mount(self) -> None:
        self.hubble.update_status()
        title = Text(printable(self.title_text), style="bold")
        title.append(f"  ·  {len(self.keys)} drop group{'s' if len(self.keys) != 1 else ''}", "dim")
        self.query_one("#detail-title", Static).update(title)
        groups = self.query_one("#groups", KeyedTable)
        store = self.hubble.store
        groups.sync([(r.key.as_id(), r) for r in (store.rows.get(k) for k in self.keys) if r is not None],
                    row_cells, lambda row: True)
        groups.focus()
        self.show_current()

    # ---------------------------------------------------------------------------------------------------
    # what is shown

    @property
    def analysis(self) -> DrillIn | None:
        if self.current is None:
            return None
        return self.analyses.get((self.current, self.fmt or ""))

    @property
    def fix(self) -> Suggestion | None:
        analysis = self.analysis
        fixes = analysis.suggestions if analysis is not None else []
        return fixes[self.selected_fix] if 0 <= self.selected_fix < len(fixes) else None

    def current_row(self) -> Row | None:
        return self.hubble.store.rows.get(self.current) if self.current is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
        if event.data_table.id == "groups":
            key = RowKey.from_id(event.row_key.value)
            if key != self.current:
                self.current = key
                self.selected_fix = 0
                self.show_current()
        elif event.data_table.id == "suggestions":
            self.selected_fix = event.cursor_row
            self.show_fix()

    def show_current(self) -> None:
        row = self.current_row()
        explanation = self.query_one("#explanation-text", Static)
        if row is None:
            explanation.update(Text("this drop group is no longer in the store (evicted at its cap)", style="dim"))
            self.show_fixes()
            return
        analysis = self.analysis
        explanation.update(explanation_text(row, analysis.analysis if analysis is not None else None))
        self.show_fixes()
        if analysis is None:
            evidence = Evidence.take(self.hubble.store, row)
            engine, fmt, timeline = self.hubble.engine, self.fmt, self.hubble.collab.timeline
            self.run_worker(lambda: drill_in(row, engine, evidence, fmt, timeline), name="analyse", group="analysis",
                            thread=True, exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "analysis":
            return
        if worker.state == WorkerState.SUCCESS and isinstance(worker.result, DrillIn):
            result = worker.result
            if self.fmt is None and result.fmt:
                self.fmt = result.fmt
            self.analyses[(result.key, result.fmt)] = result
            if result.key == self.current and result.fmt == (self.fmt or ""):
                self.show_current()
        elif worker.state == WorkerState.ERROR:
            self.query_one("#explanation-text", Static).update(
                Text(f"explaining failed: {printable(str(worker.error))}", style="red"))

    def show_fixes(self) -> None:
        analysis = self.analysis
        title = self.query_one("#fixes-title", Static)
        table = self.query_one("#suggestions", KeyedTable)
        fixes = analysis.suggestions if analysis is not None else []
        table.display = bool(fixes)
        if analysis is None:
            title.update(Text("Fixes: looking…" if self.hubble.engine is not None else "Fixes", style="bold"))
        else:
            fmt = f" ({analysis.fmt} format)" if analysis.fmt else ""
            checked = f": {len(fixes)} checked, best first" if fixes else ""
            title.update(Text(f"Fixes{fmt}{checked}", style="bold"))
        marked = self.hubble.marked
        table.sync([(s.id, s) for s in fixes], lambda s: (
            cell("☑" if s.id in marked else " "), cell(s.kind), Num(s.blast.count), cell(s.summary)),
            lambda s: True)
        self.selected_fix = min(self.selected_fix, max(len(fixes) - 1, 0))
        self.show_fix()

    def show_fix(self) -> None:
        view = self.query_one("#fix-view", Static)
        analysis, fix = self.analysis, self.fix
        if analysis is None:
            view.update(Text(""))
            return
        if fix is None:
            view.update(_no_fix_text(analysis))
            return
        if self.show_patch:
            view.update(Syntax(patch_text(fix), "bash", theme="ansi_dark", word_wrap=True))
        else:
            view.update(Syntax(fix_yaml(analysis.fixes, fix), "yaml", theme="ansi_dark", word_wrap=True))

    # ---------------------------------------------------------------------------------------------------
    # keys

    def action_back(self) -> None:
        self.app.pop_screen()
        self.hubble.redraw()

    def _need_fix(self, doing: str) -> Suggestion | None:
        fix = self.fix
        if fix is None:
            self.notify(f"no fix to {doing} for this drop group", severity="warning", timeout=3, markup=False)
        return fix

    def action_write_fix(self) -> None:
        fix = self._need_fix("write")
        if fix is None:
            return
        group = self.analysis.fixes
        path = default_path(self.hubble.collab.out_dir, group, fix)

        def write(chosen: str | None) -> None:
            if not chosen:
                return
            try:
                written = write_atomic(chosen, fix_yaml(group, fix))
            except HubbleTuiError as exc:
                self.notify(printable(str(exc)), severity="error", timeout=6, markup=False)
                return
            self.notify(f"wrote {printable(str(written))}", timeout=4, markup=False)

        self.app.push_screen(WriteFixScreen(str(path)), write)

    def action_copy_fix(self) -> None:
        fix = self._need_fix("copy")
        if fix is not None:
            text = patch_text(fix) if self.show_patch else fix_yaml(self.analysis.fixes, fix)
            self.app.copy_to_clipboard(text)
            self.notify("copied to the clipboard (OSC 52)", timeout=3, markup=False)

    def action_next_format(self) -> None:
        if self.hubble.engine is None or self.current is None:
            self.notify("formats need a cluster (--cluster or --live)", severity="warning", timeout=3, markup=False)
            return
        current = self.fmt or FORMATS[0]
        self.fmt = FORMATS[(FORMATS.index(current) + 1) % len(FORMATS)] if current in FORMATS else FORMATS[0]
        self.selected_fix = 0
        self.notify(f"fixes in {self.fmt} format", timeout=2, markup=False)
        self.show_current()

    def action_toggle_patch(self) -> None:
        self.show_patch = not self.show_patch
        self.show_fix()

    def action_mark_fix(self) -> None:
        fix = self._need_fix("mark")
        if fix is None:
            return
        marked = self.hubble.marked
        if fix.id in marked:
            del marked[fix.id]
            self.notify("unmarked", timeout=2, markup=False)
        else:
            marked[fix.id] = (self.analysis.fixes, fix)
            self.notify(f"marked: {len(marked)} fix(es) for pick", timeout=2, markup=False)
        self.show_fixes()


def _no_fix_text(analysis: DrillIn) -> Text:
    text = Text()
    if analysis.resolved:
        text.append("no fix needed\n", "bold green")
        text.append(printable(analysis.resolved), "green")
        return text
    if analysis.fixes is None:
        if analysis.analysis.notes:
            text.append(printable(analysis.analysis.notes[-1]), "yellow")
        elif analysis.key.verdict in WOULD_DROP:
            text.append("no policy change fixes this drop reason", "yellow")
        else:
            text.append("nothing to fix: Hubble forwarded these flows", "dim")
        return text
    text.append("no checked fix\n", "bold yellow")
    for reason in analysis.fixes.not_offered:
        text.append(f"• {printable(reason)}\n", "yellow")
    if analysis.fixes.rejected:
        text.append(f"{analysis.fixes.rejected} candidate(s) failed their check and are not shown\n", "dim")
    return text
