"""What the test folders share: waiting for a condition on a busy machine, child
processes that are always reaped, and the real central hub as a child process.

On the path through the `pythonpath` setting in pyproject.toml."""
