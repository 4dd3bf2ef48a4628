"""The console's pages and actions, one module per part of the office's work."""
