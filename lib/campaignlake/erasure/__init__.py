"""Erasure of customers whose deletion request is due, everywhere their data is."""
