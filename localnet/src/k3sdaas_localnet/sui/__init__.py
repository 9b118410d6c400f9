"""``k3sdaas_localnet.sui``: a moto-style stand-in for a Sui full node's gRPC API (pysui 1.5.1).

It serves the ``sui.rpc.v2`` services over TLS with pysui's own message classes, executes
programmable transactions (SplitCoins, MergeCoins, TransferObjects, Publish, MoveCall) against a
SQLite ledger, and runs the ``k3s_daas`` Move package as Python handlers that mirror move/sources
(checked by tests/localnet/test_move_parity.py).

Entry points
------------
- ``k3sdaas-localnet sui --state DIR [--port 9000] [--faucet-port P] [--nitro-root PEM]`` (:mod:`.cli`);
  ``… sui --state DIR faucet 0xADDR`` and ``… advance-clock MS`` act on a running chain's state.
- Tests: :func:`.testing.running_node` (a node in a thread: ``url``, ``ca_path``, ``faucet()``).
- Publishing without a Move compiler: :mod:`.publish`.

How a pysui client trusts the node (TLS "through configuration")
-----------------------------------------------------------------
pysui 1.5.1's ``GrpcProtocolClient.__init__`` always creates ``grpclib.client.Channel(host, port,
ssl=True)``; grpclib turns ``ssl=True`` into ``ssl.create_default_context(cafile=certifi.where())``.
Because an explicit ``cafile`` is passed, OpenSSL's defaults are never loaded, so ``SSL_CERT_FILE``,
``SSL_CERT_DIR`` and the system store are *not* honoured, and pysui's configuration has no CA or
plaintext option. The only supported hook is therefore the client object itself: subclass
``GrpcProtocolClient`` and, right after ``super().__init__``, replace ``self._channel`` with
``Channel(host, port, ssl=ssl.create_default_context(cafile=<node CA>))`` (plus ALPN ``h2``); every
request goes through ``self._channel``. :class:`.testing.TrustingGrpcClient` does exactly that;
product code does the same in its own module, taking the CA path from its configuration. pysui itself
is not patched.
"""
