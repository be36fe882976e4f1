"""Table maintenance: vacuum."""
