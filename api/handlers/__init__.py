"""Request handlers: thin, one module per resource."""
