"""Nitro stand-ins: a nitro-cli-compatible simulator and a simulated NSM signing with a test CA."""
