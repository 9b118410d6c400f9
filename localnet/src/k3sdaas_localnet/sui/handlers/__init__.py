"""Python mirrors of Move modules: one module per Move module, each exposing ``MODULE`` (its ABI table)."""
