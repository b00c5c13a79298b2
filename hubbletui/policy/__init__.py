"""Policy layer: Cilium, Kubernetes and Istio semantics, the policy graph, verdicts and explanations."""
