"""The command line: thin verbs over the core modules."""
