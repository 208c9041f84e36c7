"""Policy libraries: the on-disk format, its loader, templates, lint and sample cases."""
