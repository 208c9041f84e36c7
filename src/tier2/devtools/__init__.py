"""Tools around tier2: the demo, the replay of a real help-desk log."""
