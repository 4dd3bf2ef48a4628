"""The RAU's reference hub: ingests every site's events once, acknowledges them, routes
SEED pre-arrival records to the office of entry, signs and publishes indicator bundles.
See docs/sync.md."""
