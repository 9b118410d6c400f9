"""The worker side: ``k3s_join``'s logic (attest the master, prove the seal token, register) and the worker agent."""
