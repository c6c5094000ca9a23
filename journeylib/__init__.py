"""Learner journey analytics."""
