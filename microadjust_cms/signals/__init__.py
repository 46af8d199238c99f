"""Signals: the registry (``registry``) and the built-in request and profile signals
(``builtin``). Plain Python; features contribute their own signals from their packages."""
