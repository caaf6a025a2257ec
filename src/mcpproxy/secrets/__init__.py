"""Secrets of upstream servers: references in the config, a store to keep them, masking everywhere.

A server entry names a secret instead of holding it: ``${keyring:NAME}`` (from the secret store,
filled with ``mcpproxy secrets set NAME``) or ``${env:NAME}`` (from mcpproxy's own environment),
anywhere in its ``env``, ``headers``, ``args`` or ``url``. References are resolved right before
each connection and the resolved values are never written anywhere; every value the gateway
learns is masked in what it shows and logs.

    refs      finding and resolving references (``resolve_spec``)
    store     ``SecretStore(data_dir)``: the OS keyring when one works, else an encrypted file
    masking   the registry of known values, ``mask_known``, listing and log masking

The modules are imported by their full names; this package imports nothing itself, so that
``mcpproxy.errors`` can reach ``masking`` without pulling in the store's dependencies.
"""
