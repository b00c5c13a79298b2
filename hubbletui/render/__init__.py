"""Output for people and programs: compact/table text of flows, and (elsewhere) YAML/JSON/Markdown of fixes."""
