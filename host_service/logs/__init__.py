"""Live container logs: bounded line windows, one shared upstream follow per container, HTTP."""
