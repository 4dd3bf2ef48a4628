"""Device simulators that speak through the same ports as the real devices, and the demo scenario."""
