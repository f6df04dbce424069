"""Crypto venue feeds turned into the gateware's LEVEL_UPDATE messages.

``levels`` holds the exact decimal-to-integer conversion and the message encoding; ``binance`` and
``okx`` read recorded sessions and keep each venue's documented book synchronisation;
``recording`` reads the recorded text format they share.
"""
