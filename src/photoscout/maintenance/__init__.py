"""Maintenance: reclaiming disk from model versions the user no longer wants."""
