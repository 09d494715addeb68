"""The `tracker` command: `main` parses the command line, one module per command group."""
