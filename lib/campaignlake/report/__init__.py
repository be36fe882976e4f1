"""The static HTML report of a run."""
