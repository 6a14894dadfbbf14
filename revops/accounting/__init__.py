"""Accounting: lifetime P&L (history), capacity recommendations and the dashboard."""
