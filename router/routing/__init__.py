"""From event to deliveries: the event schema, the planner, texts and the routing pipeline."""
