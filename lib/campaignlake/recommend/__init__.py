"""Recommendations: interactions, ALS, evaluation on a holdout, complete lists per customer."""
