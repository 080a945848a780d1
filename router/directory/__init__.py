"""Who is there: the directory (users, groups, subscriptions), audiences, receiver settings, tenants."""
