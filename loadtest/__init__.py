"""Locust suite that drives the chat flows against the real PostgreSQL functions."""
