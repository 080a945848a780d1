"""The `herald` command line: service, rules, demo and admin commands."""
