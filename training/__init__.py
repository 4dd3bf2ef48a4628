"""Training of the networks the agent ships (not imported by the agent)."""
