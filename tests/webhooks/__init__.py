"""Webhook receiver tests."""
