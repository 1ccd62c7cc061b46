"""Read models above the domains: the operator's card of one interaction and the timeline across
channels around it, each read in one statement."""
