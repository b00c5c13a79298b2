"""hubbletui: why did Cilium (or Istio) say no, and what is the smallest safe fix."""

__version__ = "0.1.0"
