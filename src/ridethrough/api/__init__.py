"""Inbound HTTP API: the endpoints clients call, in their own formats."""
