"""Hostile input through the real HTTP API: refused clearly, the server keeps serving."""
