"""Actuators: the only code that changes the node (setchannel, sling jobs)."""
