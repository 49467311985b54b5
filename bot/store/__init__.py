"""Persistence. All SQL of the project lives in this package."""
