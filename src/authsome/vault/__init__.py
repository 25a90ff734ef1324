"""Record storage: the crypto envelope, key sources, the SQLite backend and locks.

Nothing here knows about providers or flows.
"""
