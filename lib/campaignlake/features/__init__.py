"""Point-in-time customer features and segments."""
