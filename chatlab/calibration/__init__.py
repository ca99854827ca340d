"""Calibration: a scenario of *your* floor, fitted from its history (the seed's tables)."""
