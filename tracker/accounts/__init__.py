"""Who may do what: users, groups, tokens, sessions and share links; permissions; credentials; devices and gateways; the outage cache of their lookups."""
