"""Policy layer: Cilium, Kubernetes and Istio semantics, the policy graph, verdicts and explanations.

Stable API (other modules, the TUI and `suggest` call these; keep them compatible):

    from hubbletui.cluster.snapshot import load_snapshot
    from hubbletui.policy.engine import PolicyEngine

    engine = PolicyEngine(state, enforcement_mode="default", istio_root_namespace="istio-system",
                          follow=False)          # follow=True: apply every ClusterState change as it happens
    subject = engine.resolve("shop/api")       # ns/pod, ns/workload, ns/Kind/name, world|host|..., an IP,
                                               # or a DNS name (world as a toFQDNs rule sees it)
    subject = engine.subject_for_endpoint(flow.source)   # hubbletui.flows.model.Endpoint -> Subject
    result = engine.trace(src, dst, 8080, "TCP")         # REF strings or Subjects; ICMP: port = ICMP type
                                                         # (nearest=False skips ranking nearest rules: faster)
    result.verdict                    # "allowed" | "denied"
    result.layers                     # [LayerResult egress@src, ingress@dst, (istio@dst when in the mesh)]
    result.deciding_layer             # the first layer that denied, or None
    result.to_dict()                  # the stable JSON form of `hubbletui trace -o json`
    hubbletui.render.trace_lines.render_trace(result)

    engine.connections(src, dst)      # PortSet of everything Cilium lets src open to dst (both directions)
    engine.selecting_rules(subject, "ingress"), engine.is_isolated(subject, "egress")
    engine.endpoints()                # one Subject per workload/bare pod and identity, plus reference entities

What-if (for suggestions): a view shares everything that did not change and re-evaluates only the rest.

    view = engine.what_if(upserts=[new_or_changed_obj, ...], deletes=[("NetworkPolicy", "ns", "name"), obj])
    view.trace(...)                   # as above, with the change applied
    view.newly_allowed(limit=None)    # [blast.NewlyAllowed(src, dst, ports: PortSet)]: what the change opens,
                                      # by workload, compared on every port of both directions

A changed pod template is an upsert of the workload (or pod) with new labels. Views can be nested.

Graph queries (networkx; `hubbletui.policy.graph`):

    graph = PolicyGraph(engine, follow=True)   # nodes: subjects, namespaces, policies, rules
    graph.what_may_reach(subject) ; graph.what_isolates(subject, "ingress") ; graph.nearest_rules(a, b, port)

Explaining observed drops is `hubbletui.diagnose`'s job: `diagnose(engine, flows) -> Diagnosis`.

Modules: labels (identity labels, label filter), selectors (endpoint selectors, LabelIndex), ports (clauses,
PortSet), subjects, rules (the compiled form), cilium / k8s (translators), inventory (pods and workloads per
namespace), engine, blast (what a what-if view newly allows), result (TraceResult), istio
(AuthorizationPolicy and PeerAuthentication, pure) with istio_layer (its place in a trace), graph, explain,
drop_reasons.
"""
