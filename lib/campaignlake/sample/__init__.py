"""The generated sample of raw exports."""
