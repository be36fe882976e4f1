"""The campaign-response model: examples, GBT search, evaluation, scoring, the model store."""
