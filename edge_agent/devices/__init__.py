"""Device drivers: each turns one kind of lane hardware into typed events for the core."""
