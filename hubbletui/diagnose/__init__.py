"""What happened and why: dropped flows grouped by connection, each group explained against the policy engine,
connections the mesh refused found among forwarded ones, and pods in trouble. Sits between the policy engine
(which answers for one connection) and suggestions (which fix a group)."""
