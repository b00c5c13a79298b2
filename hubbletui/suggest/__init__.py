"""Suggestions: the smallest checked fix for every group of dropped (or mesh-refused) flows.

    from hubbletui.suggest.fixes import suggest_all, suggest_for_case, suggest_groups
    from hubbletui.suggest.observed import ObservedTraffic

    groups = suggest_all(engine, events, fmt=None, top=3)    # [GroupFixes], drop groups in priority order
    fixes = suggest_for_case(engine, group, observed)        # GroupFixes for one DropGroup (the TUI's drill-in)

Candidates (on the side that denied): label changes (candidates_label), extensions of a rule that already
selects the pod (candidates_rule_patch), new least-privilege policies (candidates_policy), Istio
AuthorizationPolicy fixes (candidates_istio). Each is checked on a what-if view (check), ranked (rank), and
rendered by hubbletui/render/fixes_yaml.py, fixes_json.py, fixes_md.py; render/fixes_out.py writes them out.
"""
