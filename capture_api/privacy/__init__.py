"""Who may see what: roles, sensitive-image enforcement, break-the-glass and consent."""
