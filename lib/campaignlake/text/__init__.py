"""Text mining of descriptions and reviews: topics, embeddings, sentiment, text neighbours."""
