"""The chat command catalogue, its platform syntaxes, and the core handler of each command."""
