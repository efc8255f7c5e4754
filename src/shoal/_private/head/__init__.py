"""The head: the control store, actors, placement groups, and their persistence."""
