"""Nitro Enclaves on the parent: EIF format and measurements, nitro-cli driver and its typed errors."""
