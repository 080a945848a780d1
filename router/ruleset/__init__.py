"""Rule files: parsing with positions, conditions, the durable_rules engine, versions and sync."""
