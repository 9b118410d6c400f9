"""Local stand-ins (Sui node, Nitro) for tests and the local environment; product code never imports this."""
