"""Bottom layer: enums, errors, process config, logs, metrics, secrets, input and outbound policy."""
