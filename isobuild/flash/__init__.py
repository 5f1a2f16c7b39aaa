"""Writing an ISO to a USB stick: find the devices, refuse unsafe targets, write, verify."""
