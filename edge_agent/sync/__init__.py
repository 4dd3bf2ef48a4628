"""The link to the central Risk Analysis Unit: durable outbox over MQTT, downlink
validation, and signed indicator bundles. See docs/sync.md."""
