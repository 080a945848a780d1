"""After routing: the delivery state machine, channel contracts, feed, live fan-out, access, breaker."""
