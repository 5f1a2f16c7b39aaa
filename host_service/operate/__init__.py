"""Operating the installed appliance: every layer's status from background pollers, runtime
blockers, and the workloads view."""
