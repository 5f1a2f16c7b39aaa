"""Release-based updates: check the channel, show the diff, run the update, keep the history."""
