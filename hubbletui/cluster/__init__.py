"""Cluster state: the Kubernetes objects policy decisions depend on, from a YAML snapshot or live."""
